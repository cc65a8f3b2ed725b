"""Drives `stipple serve`'s AUTOMATIC1111-compatible API (/sdapi/v1) with the published
`webuiapi` client, as an artist's script would, and checks what the client gets back.

Usage: webui_client.py PORT SHIPPED_MODEL OTHER_MODEL

Every call prints one line `webuiapi: <call> -> <what came back>`; the first failed check
raises (exit status 1). The server must serve the 16x16 models SHIPPED_MODEL and OTHER_MODEL.
"""

import base64
import io
import sys
import threading
import time

import webuiapi
from PIL import Image

PORT = int(sys.argv[1])
SHIPPED, OTHER = sys.argv[2], sys.argv[3]
SIZE = 16


def log(call, result):
    print(f"webuiapi: {call} -> {result}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def png(image, what):
    check(image.format == "PNG", f"{what}: expected a PNG, got {image.format}")
    check(image.size == (SIZE, SIZE), f"{what}: expected {SIZE}x{SIZE}, got {image.size}")


def pixels(image):
    data = image.convert("RGB").tobytes()
    return [tuple(data[i:i + 3]) for i in range(0, len(data), 3)]


def mean_abs_diff(a, b, keep):
    """Mean absolute RGB difference over the pixels where keep(x, y) holds."""
    total, count = 0, 0
    for i, (p, q) in enumerate(zip(pixels(a), pixels(b))):
        if keep(i % SIZE, i // SIZE):
            total += sum(abs(u - v) for u, v in zip(p, q))
            count += 3
    return total / count


api = webuiapi.WebUIApi(host="127.0.0.1", port=PORT, sampler="Euler a", steps=6)

# Models, as a client lists them and finds the one it wants.
models = api.get_sd_models()
names = api.util_get_model_names()
log("get_sd_models()", [(m["title"], m["model_name"]) for m in models])
check(any(m["model_name"] == SHIPPED for m in models), f"no model {SHIPPED} in {models}")
check(any(m["model_name"] == OTHER for m in models), f"no model {OTHER} in {models}")
for m in models:
    check(all(k in m for k in ("title", "model_name", "hash", "sha256", "filename")), f"sd-model fields: {m}")
log("util_get_model_names()", names)

# Samplers and schedulers under the web UI's names.
samplers = api.util_get_sampler_names()
log("util_get_sampler_names()", samplers)
for wanted in ("Euler a", "Euler", "DPM++ 2M", "DDIM"):
    check(wanted in samplers, f"sampler {wanted!r} missing from {samplers}")
schedulers = api.util_get_scheduler_names()
log("util_get_scheduler_names()", schedulers)
check("karras" in schedulers, f"scheduler 'karras' missing from {schedulers}")

# Options: read the current model, switch to the other one, read it back, switch back.
options = api.get_options()
current = api.util_get_current_model()
log("get_options()['sd_model_checkpoint']", current)
check(SHIPPED in current, f"the server should start on {SHIPPED}, options say {current!r}")
other_title = next(m["title"] for m in models if m["model_name"] == OTHER)
api.set_options({"sd_model_checkpoint": other_title})
switched = api.util_get_current_model()
log(f"set_options(sd_model_checkpoint={other_title!r}); util_get_current_model()", switched)
check(OTHER in switched, f"after switching, options say {switched!r}")
r = api.txt2img(prompt="red heart", seed=7, steps=3, width=SIZE, height=SIZE, cfg_scale=4)
log("txt2img on the switched model: info['sd_model_name']", r.info.get("sd_model_name"))
check(r.info.get("sd_model_name") == OTHER, f"generated with {r.info.get('sd_model_name')!r}, not {OTHER}")
api.util_set_model(SHIPPED)
back = api.util_get_current_model()
log(f"util_set_model({SHIPPED!r}); util_get_current_model()", back)
check(SHIPPED in back and OTHER not in back, f"switching back gave {back!r}")
bad = api.session.post(f"{api.baseurl}/options", json={"sd_model_checkpoint": "no-such-model"})
log("POST /options with an unknown model", f"{bad.status_code} {bad.text[:120]}")
check(400 <= bad.status_code < 500 and "detail" in bad.json(), "an unknown model must be a 4xx with a detail")

# txt2img: two 16x16 PNGs, `info` a JSON string the client parses, `parameters` the echo.
r = api.txt2img(prompt="red heart", negative_prompt="blue", seed=42, steps=6, width=SIZE, height=SIZE,
                batch_size=2, cfg_scale=4.0, sampler_name="DPM++ 2M", scheduler="karras")
log("txt2img(batch_size=2, DPM++ 2M, karras): images", [(i.format, i.size) for i in r.images])
check(len(r.images) == 2, f"expected 2 images, got {len(r.images)}")
for i, image in enumerate(r.images):
    png(image, f"txt2img image {i}")
check(isinstance(r.info, dict), f"info must be a JSON string, the client got {r.info!r:.200}")
log("txt2img: info", {k: r.info.get(k) for k in ("seed", "all_seeds", "prompt", "steps", "sampler_name", "sd_model_name")})
check(r.info.get("seed") == 42, f"info seed {r.info.get('seed')}")
check(r.info.get("all_seeds", [None])[:2] == [42, 43], f"info all_seeds {r.info.get('all_seeds')}")
check(r.info.get("prompt") == "red heart", f"info prompt {r.info.get('prompt')!r}")
check(r.info.get("sd_model_name") == SHIPPED, f"info model {r.info.get('sd_model_name')!r}")
log("txt2img: parameters", {k: r.parameters.get(k) for k in ("prompt", "seed", "steps", "batch_size", "sampler_name")})
for k, v in (("prompt", "red heart"), ("seed", 42), ("steps", 6), ("batch_size", 2), ("sampler_name", "DPM++ 2M")):
    check(r.parameters.get(k) == v, f"parameters[{k!r}] = {r.parameters.get(k)!r}, sent {v!r}")
infotexts = r.info.get("infotexts", [])
embedded = r.images[0].info.get("parameters")
log("txt2img: PNG 'parameters' text chunk", embedded)
check(embedded is not None and embedded == infotexts[0], f"PNG text {embedded!r} != infotexts[0] {infotexts[:1]!r}")
check("Seed: 42" in embedded, f"no seed in the infotext {embedded!r}")

# The same request again gives the same pixels (the seed is honoured).
again = api.txt2img(prompt="red heart", negative_prompt="blue", seed=42, steps=6, width=SIZE, height=SIZE,
                    batch_size=2, cfg_scale=4.0, sampler_name="DPM++ 2M", scheduler="karras")
same = pixels(again.images[0]) == pixels(r.images[0]) and pixels(again.images[1]) == pixels(r.images[1])
log("txt2img again with seed 42: identical pixels", same)
check(same, "the same seed gave different images")
check(pixels(r.images[0]) != pixels(r.images[1]), "seeds 42 and 43 gave the same image")

# png-info reads the recipe back from the image.
info = api.png_info(r.images[0])
log("png_info(image)", str(info.info)[:100])
check(info.info == embedded, f"png-info gave {info.info!r}")

# img2img with a mask: white (right half) is repainted, black (left half) kept; the client's
# own mask blur (4), which a model of pixels applies to the mask's outline only.
init = r.images[0]
mask = Image.new("L", (SIZE, SIZE), 0)
mask.paste(255, (SIZE // 2, 0, SIZE, SIZE))
out = api.img2img(images=[init], mask_image=mask, inpainting_fill=1, inpaint_full_res=False, prompt="blue heart",
                  seed=5, steps=6, denoising_strength=0.9, width=SIZE, height=SIZE, cfg_scale=4.0)
check(len(out.images) == 1, f"img2img: expected 1 image, got {len(out.images)}")
png(out.images[0], "img2img image")
kept = mean_abs_diff(init, out.images[0], lambda x, y: x < SIZE // 2)
painted = mean_abs_diff(init, out.images[0], lambda x, y: x >= SIZE // 2)
log("img2img(mask: right half, denoising 0.9): mean |change| left (kept), right (repainted)", (round(kept, 2), round(painted, 2)))
check(painted > kept, "the masked half should change more than the kept half")
out_inv = api.img2img(images=[init], mask_image=mask, mask_blur=0, inpainting_fill=1, inpaint_full_res=False,
                      inpainting_mask_invert=1, prompt="blue heart",
                      seed=5, steps=6, denoising_strength=0.9, width=SIZE, height=SIZE, cfg_scale=4.0)
kept_inv = mean_abs_diff(init, out_inv.images[0], lambda x, y: x >= SIZE // 2)
painted_inv = mean_abs_diff(init, out_inv.images[0], lambda x, y: x < SIZE // 2)
log("img2img(inpainting_mask_invert=1): mean |change| right (kept), left (repainted)", (round(kept_inv, 2), round(painted_inv, 2)))
check(painted_inv > kept_inv, "with the mask inverted the left half should change more")

# img2img without a mask, with the client's defaults for everything else (its
# inpainting fields among them, which mean nothing without a mask).
plain = api.img2img(images=[init], prompt="blue heart", seed=5, steps=6, width=SIZE, height=SIZE, cfg_scale=4.0)
png(plain.images[0], "img2img without a mask")
log("img2img(no mask, denoising_strength=0.75 default)", f"{len(plain.images)} image, mean |change| "
    f"{mean_abs_diff(init, plain.images[0], lambda x, y: True):.2f}, info denoising_strength {plain.info.get('denoising_strength')}")
check(plain.info.get("denoising_strength") == 0.75, f"denoising_strength {plain.info.get('denoising_strength')}")

# Progress while a long job runs, then interrupt it.
idle = api.get_progress()
log("get_progress() while idle", {k: idle[k] for k in ("progress", "state")})
check(idle["progress"] == 0 and idle["state"]["job_count"] == 0, f"idle progress {idle}")
runner = webuiapi.WebUIApi(host="127.0.0.1", port=PORT, sampler="Euler a", steps=6)
long_result = {}


def long_job():
    started = time.monotonic()
    try:
        long_result["result"] = runner.txt2img(prompt="alien monster", seed=1, steps=150, batch_size=64,
                                               width=SIZE, height=SIZE, cfg_scale=4.0)
    except Exception as e:  # the server may answer an interrupted job with an error
        long_result["error"] = repr(e)
    long_result["seconds"] = time.monotonic() - started


thread = threading.Thread(target=long_job)
thread.start()
seen, preview = [], None
deadline = time.monotonic() + 60
while time.monotonic() < deadline and thread.is_alive():
    p = api.get_progress()
    check(0.0 <= p["progress"] <= 1.0, f"progress out of [0, 1]: {p['progress']}")
    seen.append(p["progress"])
    if p["progress"] > 0 and p.get("current_image"):
        preview = Image.open(io.BytesIO(base64.b64decode(p["current_image"])))
        preview.load()
        break
    time.sleep(0.05)
check(preview is not None, f"no current_image while the job ran (progress seen: {seen[-5:]})")
log("get_progress() during a 150-step batch of 64", {"progress": round(p["progress"], 4), "eta_relative": p.get("eta_relative"),
                                                     "state": p["state"], "current_image": (preview.format, preview.size)})
check(preview.format == "PNG", f"current_image is {preview.format}")
check(p["state"]["sampling_steps"] > 0 and p["state"]["job_count"] >= 1, f"state while running: {p['state']}")
later = api.get_progress()["progress"]
check(later >= p["progress"], f"progress went back: {p['progress']} then {later}")
asked = time.monotonic()
api.interrupt()
thread.join(timeout=30)
check(not thread.is_alive(), "the interrupted txt2img did not return within 30 s")
stopped_after = time.monotonic() - asked
outcome = "error " + long_result["error"][:100] if "error" in long_result else f"{len(long_result['result'].images)} images"
log("interrupt(); the running txt2img returned", f"{outcome} {stopped_after:.2f} s after the interrupt")
check(stopped_after < 10, f"the job took {stopped_after:.1f} s to stop")
after = api.get_progress()
log("get_progress() after the interrupt", {k: after[k] for k in ("progress", "state")})
check(after["state"]["job_count"] == 0, f"a job is still counted after the interrupt: {after['state']}")
# The web UI answers an interrupted job with the images so far; a server that reports an
# error instead must say so in a 4xx/5xx the client raises; either way the server goes on.
r = api.txt2img(prompt="red apple", seed=3, steps=4, width=SIZE, height=SIZE, cfg_scale=4.0)
png(r.images[0], "txt2img after the interrupt")
log("txt2img after the interrupt", f"{len(r.images)} image, seed {r.info.get('seed')}")

# A bad request is a 4xx whose body the client shows (RuntimeError(status, text)).
try:
    api.txt2img(prompt="red heart", steps=6, width=SIZE, height=SIZE, sampler_name="No Such Sampler")
    raise AssertionError("an unknown sampler was accepted")
except RuntimeError as e:
    status, text = e.args
    log("txt2img(sampler_name='No Such Sampler')", f"RuntimeError({status}, {text[:100]})")
    check(400 <= status < 500 and "sampler" in text, f"unknown sampler: {status} {text}")

print("webuiapi: all checks passed", flush=True)
