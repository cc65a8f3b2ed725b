"""Drives `stipple serve`'s OpenAI images API (/v1) with the official `openai` client, as a
general client would, and checks what the client gets back.

Usage: openai_client.py PORT API_KEY MODEL

The server must be started with `--api-key API_KEY` and serve the 16x16 model MODEL. Every
call prints one line `openai: <call> -> <what came back>`; the first failed check raises
(exit status 1).
"""

import base64
import io
import sys

import openai
from PIL import Image

PORT, KEY, MODEL = int(sys.argv[1]), sys.argv[2], sys.argv[3]
BASE = f"http://127.0.0.1:{PORT}/v1"


def log(call, result):
    print(f"openai: {call} -> {result}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# No retries: every answer the server gives is the one checked.
client = openai.OpenAI(base_url=BASE, api_key=KEY, max_retries=0, timeout=120)

models = client.models.list()
ids = [m.id for m in models.data]
log("models.list()", ids)
check(MODEL in ids, f"{MODEL} missing from {ids}")
check(all(m.object == "model" for m in models.data), "every entry is an object 'model'")

r = client.images.generate(model=MODEL, prompt="red heart", n=2, size="16x16", response_format="b64_json")
check(len(r.data) == 2, f"expected 2 images, got {len(r.data)}")
images = []
for d in r.data:
    check(d.b64_json, "each datum carries b64_json")
    image = Image.open(io.BytesIO(base64.b64decode(d.b64_json)))
    image.load()
    check(image.format == "PNG" and image.size == (16, 16), f"got {image.format} {image.size}")
    images.append(image)
log("images.generate(n=2, size='16x16', response_format='b64_json')",
    f"created={r.created}, {[(i.format, i.size) for i in images]}")
check(isinstance(r.created, int) and r.created > 1_600_000_000, f"created {r.created}")
check(images[0].tobytes() != images[1].tobytes(), "the two images are identical")
check("parameters" in images[0].info, "the PNG carries its recipe text")

one = client.images.generate(model=MODEL, prompt="alien monster", size="16x16", response_format="b64_json")
log("images.generate(n omitted)", f"{len(one.data)} image")
check(len(one.data) == 1, "n defaults to 1")

def refused(call, what, **kwargs):
    """Calls images.generate with `kwargs`: the client must raise for a 4xx whose answer names
    the field `what`."""
    try:
        client.images.generate(**kwargs)
    except openai.BadRequestError as e:
        reason = e.response.json()["error"]["message"]
        log(call, f"{type(e).__name__} {e.status_code} ({str(e)[:60]!r}); the answer's message: {reason[:120]}")
        check(e.status_code == 400, f"{call}: status {e.status_code}")
        check(what in reason, f"{call}: the answer does not name {what!r}: {e.response.text}")
        check(reason in str(e), f"{call}: the client shows the server's message: {e}")
        return
    raise AssertionError(f"{call} was accepted")


for size in ("17x5", "banana", "100000x100000"):
    refused(f"images.generate(size={size!r})", "size", model=MODEL, prompt="red heart", n=1, size=size,
            response_format="b64_json")
refused("images.generate(model='no-such-model')", "no-such-model", model="no-such-model", prompt="red heart",
        size="16x16", response_format="b64_json")
refused("images.generate(n=1000)", "n", model=MODEL, prompt="red heart", n=1000, size="16x16", response_format="b64_json")
refused("images.generate(response_format='url')", "response_format", model=MODEL, prompt="red heart", size="16x16",
        response_format="url")

intruder = openai.OpenAI(base_url=BASE, api_key="wrong-key-0123456789", max_retries=0)
try:
    intruder.models.list()
    raise AssertionError("a wrong API key was accepted")
except openai.AuthenticationError as e:
    log("models.list() with a wrong key", f"{type(e).__name__} {e.status_code}")
    check(e.status_code == 401, f"status {e.status_code}")

print("openai: all checks passed", flush=True)
