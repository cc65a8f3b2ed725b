"""Makes the tiny random-weight Stable Diffusion 1.x fixture of crates/stipple-sd and the
reference outputs its conformance tests compare with.

Run from the repository root in a venv with tests/reference/requirements-sd.txt installed:
    python tests/reference/make_sd_fixture.py

The components are built in code as diffusers' own pipeline tests build theirs
(tests/pipelines/stable_diffusion/test_stable_diffusion.py, `get_dummy_components`), smaller
still so that the committed files stay small, with GroupNorm group counts other than 32
(8 in the U-Net and the VAE) so that a port that hard-codes 32 groups fails. The tokenizer is
CLIP's real byte-level BPE: its merges ship inside the open_clip_torch wheel
(open_clip/bpe_simple_vocab_16e6.txt.gz); vocab.json and merges.txt are built from them as
CLIP's `SimpleTokenizer` builds its vocabulary (49,408 entries), so the text model's
`vocab_size` is 49,408 and its hidden size is kept at 8 to keep the embedding small.

Every weight is rounded to bfloat16 precision (values below float16's normal range set to 0),
so the f32, f16 and bf16 files below hold exactly the same numbers, and the references are
computed in float32 from those numbers.

Writes tests/fixtures/sd/tiny-sd15/ (a diffusers folder: unet in f16, vae in f32, text
encoder in bf16, configs, tokenizer) and tests/fixtures/sd/tiny-sd15.safetensors (the same
weights in the original CompVis layout, f16: `model.diffusion_model.*`,
`first_stage_model.*`, `cond_stage_model.transformer.*`), checked by loading it back with
diffusers' `from_single_file`; and tests/reference/sd/goldens.{json,safetensors}:
token ids, text-encoder hidden states (last, and penultimate + final LayerNorm = clip skip 2),
one U-Net call, VAE decode and encode (mean), and a 4-step Euler pipeline run with guidance
7.5 and a negative prompt from fixed latents; VAE encode's std and a 4-step img2img run at
strength 0.5 from an RGB image with the two normal draws it made.

`make_sd2` does the same for an SD 2.x-shaped model (linear transformer projections, one head
count per level, GELU text encoder, v-prediction, padding token "!", the first 2,000 of CLIP's
merges): tests/fixtures/sd/tiny-sd2/, tests/fixtures/sd/tiny-sd2.safetensors (text encoder in
OpenCLIP's layout, `cond_stage_model.model.*`, with one residual block more than the encoder
runs, as SD 2.x files hold) and tests/reference/sd/goldens-sd2.{json,safetensors}.

`released_names` writes tests/reference/sd/released-names.json: the tensor names and shapes of
the released SD 1.5 and SD 2.1 single files (all 24 OpenCLIP blocks for SD 2.1), checked with
diffusers' own converters, for the name-mapping tests of the real layouts.
"""
import gzip
import shutil
import json
import os
from importlib.resources import files

import numpy as np
import torch
from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline,
                       StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel)
from diffusers.loaders import single_file_utils as s
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

FIXTURES = "tests/fixtures/sd"
FOLDER = os.path.join(FIXTURES, "tiny-sd15")
SINGLE = os.path.join(FIXTURES, "tiny-sd15.safetensors")
GOLDENS = "tests/reference/sd"

PROMPTS = [
    "a photo of a cat",
    "A Photo, of  a CAT!!",
    "don't stop: it's 3.14 o'clock -- (ok?) [yes]",
    "café naïve résumé",
    "",
    ("a very long prompt about a lighthouse on a cliff at dusk, " * 12).strip(),
]
PROMPT = "a watercolor lighthouse at dusk"
NEGATIVE = "blurry, low quality"


def bytes_to_unicode():
    """GPT-2's reversible byte → printable-character table, which CLIP's BPE works over
    (CLIP `simple_tokenizer.bytes_to_unicode`)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def clip_tokenizer(out_dir, n_merges=49152 - 256 - 2, pad="<|endoftext|>"):
    """vocab.json + merges.txt exactly as CLIP's `SimpleTokenizer.__init__` builds its
    vocabulary: bytes, bytes + `</w>`, the first 48,894 merges (or fewer), the two special
    tokens."""
    bpe = files("open_clip").joinpath("bpe_simple_vocab_16e6.txt.gz")
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")
    merges = merges[1 : n_merges + 1]
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + [m.replace(" ", "") for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 512 + n_merges + 2
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = CLIPTokenizer(os.path.join(out_dir, "vocab.json"), os.path.join(out_dir, "merges.txt"), model_max_length=77,
                        pad_token=pad)
    tok.save_pretrained(out_dir)
    return tok


def round_weights(module):
    """Rounds every parameter to bf16 precision, flushing values below f16's smallest normal
    number to 0, so f32, f16 and bf16 copies hold the same values."""
    with torch.no_grad():
        for p in module.parameters():
            q = p.to(torch.bfloat16).to(torch.float32)
            q[q.abs() < 6.2e-5] = 0.0
            assert torch.equal(q.to(torch.float16).to(torch.float32), q)
            p.copy_(q)


def components():
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=2,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8,
        attention_head_dim=4,  # SD 1.x meaning: 4 heads (of 8 channels at 32 channels)
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=[16, 32],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        layers_per_block=2,
        norm_num_groups=8,
        sample_size=32,
        scaling_factor=0.18215,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=8, intermediate_size=37, num_hidden_layers=5, num_attention_heads=2,
        max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    ))
    # Non-trivial norm parameters, so that loading them is checked (a fresh GroupNorm or
    # LayerNorm is the identity map's scale and shift).
    with torch.no_grad():
        for m in (unet, vae, text_encoder):
            for name, p in m.named_parameters():
                if "norm" in name:
                    p.add_(0.1 * torch.randn_like(p))
    for m in (unet, vae, text_encoder):
        round_weights(m)
        m.eval()
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="epsilon", timestep_spacing="leading", steps_offset=1,
    )
    return unet, vae, text_encoder, scheduler


# --- the original (CompVis / ldm) layout, the inverse of diffusers' single_file_utils -----

RESNET_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
              "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_ATTN_LDM = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def unet_to_ldm(sd, cfg):
    """diffusers UNet2DConditionModel keys → ldm / SGM `UNetModel` keys (SDXL's
    `add_embedding` is SGM's `label_emb.0`)."""
    lpb = cfg["layers_per_block"]
    n = len(cfg["block_out_channels"])
    names = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
             "mid_block.resnets.0": "middle_block.0", "mid_block.attentions.0": "middle_block.1",
             "mid_block.resnets.1": "middle_block.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
    for i in range(n):
        for j in range(lpb):
            k = 1 + i * (lpb + 1) + j
            names[f"down_blocks.{i}.resnets.{j}"] = f"input_blocks.{k}.0"
            names[f"down_blocks.{i}.attentions.{j}"] = f"input_blocks.{k}.1"
        if i < n - 1:
            names[f"down_blocks.{i}.downsamplers.0.conv"] = f"input_blocks.{(i + 1) * (lpb + 1)}.0.op"
        has_attn = cfg["up_block_types"][i].startswith("CrossAttn")
        for j in range(lpb + 1):
            k = i * (lpb + 1) + j
            names[f"up_blocks.{i}.resnets.{j}"] = f"output_blocks.{k}.0"
            names[f"up_blocks.{i}.attentions.{j}"] = f"output_blocks.{k}.1"
        if i < n - 1:
            names[f"up_blocks.{i}.upsamplers.0.conv"] = f"output_blocks.{i * (lpb + 1) + lpb}.{2 if has_attn else 1}.conv"
    out = {}
    for key, t in sd.items():
        prefix = max((p for p in names if key.startswith(p + ".")), key=len)
        rest = key[len(prefix) + 1:]
        if ".resnets." in prefix or prefix.startswith("mid_block.resnets"):
            first, _, tail = rest.partition(".")
            rest = RESNET_LDM[first] + "." + tail
        out["model.diffusion_model." + names[prefix] + "." + rest] = t
    return out


def vae_to_ldm(sd, cfg):
    """diffusers AutoencoderKL keys → ldm `AutoencoderKL` keys (attention projections as
    1×1 convolutions)."""
    n = len(cfg["block_out_channels"])
    out = {}
    for key, t in sd.items():
        k = key
        for a, b in [("down_blocks.", "down."), ("mid_block.resnets.0", "mid.block_1"),
                     ("mid_block.attentions.0", "mid.attn_1"), ("mid_block.resnets.1", "mid.block_2"),
                     ("conv_norm_out", "norm_out"), ("downsamplers.0", "downsample"), ("upsamplers.0", "upsample"),
                     ("conv_shortcut", "nin_shortcut")]:
            k = k.replace(a, b)
        parts = k.split(".")
        if parts[1] == "up_blocks":  # ldm numbers the decoder's levels from the top resolution
            parts[1:3] = ["up", str(n - 1 - int(parts[2]))]
        k = ".".join(parts)
        k = k.replace(".resnets.", ".block.")
        if ".attn_1." in k:
            head, _, tail = k.partition(".attn_1.")
            name, _, kind = tail.rpartition(".")
            k = f"{head}.attn_1.{VAE_ATTN_LDM[name]}.{kind}"
            if kind == "weight" and t.dim() == 2:
                t = t[:, :, None, None]
        out["first_stage_model." + k] = t
    return out


def write_single_file(unet, vae, text_encoder):
    sd = unet_to_ldm(unet.state_dict(), unet.config)
    sd.update(vae_to_ldm(vae.state_dict(), vae.config))
    for k, t in text_encoder.state_dict().items():
        key = k if k.startswith("text_model.") else "text_model." + k
        sd["cond_stage_model.transformer." + key] = t
    sd = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    # As in released SD 1.x checkpoints: the position-id buffer of the text model.
    sd["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77)[None, :]
    save_file(sd, SINGLE)


def save_folder(unet, vae, text_encoder, tokenizer, scheduler, folder=FOLDER, build_dir=None):
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    # Each weight file in another precision (the values are the same, see round_weights).
    unet.to(torch.float16).save_pretrained(os.path.join(folder, "unet"), safe_serialization=True)
    unet.to(torch.float32)
    # The text encoder under the `text_model.` names that released SD 1.x folders carry
    # (transformers 4), whatever this transformers version writes.
    sd = {k if k.startswith("text_model.") else "text_model." + k: v.to(torch.bfloat16).contiguous()
          for k, v in text_encoder.state_dict().items()}
    save_file(sd, os.path.join(folder, "text_encoder", "model.safetensors"), metadata={"format": "pt"})
    # The tokenizer as released SD 1.x folders hold it: vocab.json and merges.txt, no tokenizer.json.
    tok_dir = os.path.join(folder, "tokenizer")
    os.remove(os.path.join(tok_dir, "tokenizer.json"))
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(build_dir or os.path.join(FIXTURES, "tokenizer-build"), name), os.path.join(tok_dir, name))
    return pipe


def main():
    os.makedirs(GOLDENS, exist_ok=True)
    tokenizer = clip_tokenizer(os.path.join(FIXTURES, "tokenizer-build"))
    unet, vae, text_encoder, scheduler = components()
    pipe = save_folder(unet, vae, text_encoder, tokenizer, scheduler)
    write_single_file(unet, vae, text_encoder)
    built = tokenizer
    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(FOLDER, "tokenizer"))
    assert tokenizer(PROMPTS)["input_ids"] == built(PROMPTS)["input_ids"]

    g = {}
    meta = {"prompts": PROMPTS, "prompt": PROMPT, "negative_prompt": NEGATIVE}
    # 1. token ids (padded/truncated to 77 as diffusers' pipelines call the tokenizer).
    ids = tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True)["input_ids"]
    meta["input_ids"] = ids
    # The unpadded, untruncated ids too (for prompts longer than 77 tokens).
    meta["tokens"] = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    with torch.no_grad():
        # 2. text encoder: last hidden state, and clip skip 2 (diffusers: hidden_states[-(2)]
        # through final_layer_norm).
        pair = torch.tensor(tokenizer([PROMPT, NEGATIVE], padding="max_length", max_length=77, truncation=True)["input_ids"])
        out = text_encoder(pair, output_hidden_states=True)
        g["text.last_hidden_state"] = out.last_hidden_state
        text_model = getattr(text_encoder, "text_model", text_encoder)  # transformers 4 / 5
        g["text.clip_skip_2"] = text_model.final_layer_norm(out.hidden_states[-2])
        # 3. one U-Net call on fixed inputs, two timesteps (one fractional).
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(2, 4, 16, 16, generator=gen)
        ctx = torch.randn(2, 77, 8, generator=gen)
        t = torch.tensor([999.0, 10.5])
        g["unet.sample"], g["unet.encoder_hidden_states"], g["unet.timesteps"] = x, ctx, t
        g["unet.out"] = unet(x, t, encoder_hidden_states=ctx).sample
        # 4. VAE decode and encode (mean of the latent distribution).
        z = torch.randn(1, 4, 16, 16, generator=gen)
        img = torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1
        g["vae.latents"], g["vae.decoded"] = z, vae.decode(z).sample
        g["vae.image"], g["vae.encoded_mean"] = img, vae.encode(img).latent_dist.mean
        # 5. the whole pipeline: 4 Euler steps (leading spacing, steps_offset 1), CFG 7.5.
        latents = torch.randn(1, 4, 16, 16, generator=gen)
        g["pipeline.latents"] = latents
        run = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=4, guidance_scale=7.5,
                   height=32, width=32, latents=latents.clone())
        g["pipeline.final_latents"] = pipe(**run, output_type="latent").images
        g["pipeline.image"] = torch.from_numpy(pipe(**run, output_type="np").images).permute(0, 3, 1, 2)
        meta["pipeline.timesteps"] = pipe.scheduler.timesteps.tolist()
        meta["pipeline.sigmas"] = pipe.scheduler.sigmas.tolist()
        meta["pipeline.init_noise_sigma"] = float(pipe.scheduler.init_noise_sigma)

        # 6. img2img from an RGB image at strength 0.5: diffusers samples the latent
        # distribution (mean + std·a) and noises it (+ σ·b) with two draws of the generator,
        # recorded here as a and b; the run is repeated from those latents to prove it.
        img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
        init = torch.rand(1, 3, 32, 32, generator=gen)
        run2 = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=4, guidance_scale=7.5, strength=0.5)
        out = img2img(image=init, generator=torch.Generator().manual_seed(7), output_type="latent", **run2).images
        draws = torch.Generator().manual_seed(7)
        a, b = torch.randn(1, 4, 16, 16, generator=draws), torch.randn(1, 4, 16, 16, generator=draws)
        dist = vae.encode(init * 2 - 1).latent_dist
        z0 = (dist.mean + dist.std * a) * vae.config.scaling_factor
        skip = torch.Generator().manual_seed(7)
        torch.randn(1, 4, 16, 16, generator=skip)
        again = img2img(image=z0, generator=skip, output_type="latent", **run2).images
        assert torch.equal(out, again)
        g["img2img.image"], g["img2img.sample_noise"], g["img2img.noise"] = init, a, b
        g["img2img.final_latents"] = out
        g["vae.encoded_std"] = vae.encode(img).latent_dist.std

        # The single file loads back in diffusers (configs from the folder) to the same outputs.
        single = StableDiffusionPipeline.from_single_file(SINGLE, config=FOLDER, local_files_only=True,
                                                          safety_checker=None, torch_dtype=torch.float32)
        single.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        again = single(**run, output_type="latent").images
        assert torch.allclose(again, g["pipeline.final_latents"], atol=1e-5), (again - g["pipeline.final_latents"]).abs().max()
        assert torch.equal(single.unet(x, t, encoder_hidden_states=ctx).sample, g["unet.out"])
        # And the folder, reloaded in f32 from its f16/bf16 files.
        folder = StableDiffusionPipeline.from_pretrained(FOLDER, torch_dtype=torch.float32, local_files_only=True)
        folder.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        assert torch.equal(folder.unet(x, t, encoder_hidden_states=ctx).sample, g["unet.out"])
        assert torch.equal(folder.text_encoder(pair).last_hidden_state, g["text.last_hidden_state"])
        assert torch.equal(folder.vae.decode(z).sample, g["vae.decoded"])
        assert torch.equal(single.text_encoder(pair).last_hidden_state, g["text.last_hidden_state"])

        make_lora(unet, text_encoder, g)
        # Tiled decoding (diffusers' `enable_tiling`: tiles of `sample_size` pixels, a quarter
        # overlap, linear blends) of a latent larger than one tile in both directions.
        z_big = torch.randn(1, 4, 24, 20, generator=torch.Generator().manual_seed(10))
        vae.enable_tiling()
        g["vae.tiled_latents"], g["vae.tiled_decoded"] = z_big, vae.decode(z_big).sample
        img_big = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(12)) * 2 - 1
        g["vae.tiled_image"], g["vae.tiled_encoded_mean"] = img_big, vae.encode(img_big).latent_dist.mean
        vae.disable_tiling()
    save_file({k: v.contiguous().float() for k, v in g.items()}, os.path.join(GOLDENS, "goldens.safetensors"))
    with open(os.path.join(GOLDENS, "goldens.json"), "w") as f:
        json.dump(meta, f, indent=1)
    shutil.rmtree(os.path.join(FIXTURES, "tokenizer-build"))


# --- SD 2.x: linear projections, per-level heads, GELU text encoder, v-prediction ---------

FOLDER2 = os.path.join(FIXTURES, "tiny-sd2")
SINGLE2 = os.path.join(FIXTURES, "tiny-sd2.safetensors")


def components_sd2(vocab_size):
    """An SD 2.x-shaped model, smaller still, with the layout choices SD 1.x lacks: linear
    transformer projections, one head count per level, the exact GELU in the text encoder,
    v-prediction; and another block arrangement (attention at the top level, one resnet per
    block)."""
    torch.manual_seed(1)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8, attention_head_dim=[2, 4], use_linear_projection=True, upcast_attention=True,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        norm_num_groups=4, sample_size=16, scaling_factor=0.18215,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=8, intermediate_size=20, num_hidden_layers=3, num_attention_heads=2,
        max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5,
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=0,
    ))
    with torch.no_grad():
        for m in (unet, vae, text_encoder):
            for name, p in m.named_parameters():
                if "norm" in name:
                    p.add_(0.1 * torch.randn_like(p))
    for m in (unet, vae, text_encoder):
        round_weights(m)
        m.eval()
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="v_prediction", timestep_spacing="leading", steps_offset=1,
    )
    return unet, vae, text_encoder, scheduler


OPEN_CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
                   "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def clip_to_open_clip(text_encoder, extra_layer, p="cond_stage_model.model."):
    """transformers CLIPTextModel → OpenCLIP `cond_stage_model.model.*` names (the inverse of
    diffusers' `convert_open_clip_checkpoint`), with q/k/v packed into `in_proj_*`. SD 2.x
    reads the penultimate layer, so its files hold one layer more than diffusers' text
    encoder: `extra_layer` (random) is written after the others."""
    sd = {k.removeprefix("text_model."): v for k, v in text_encoder.state_dict().items()}
    out = {p + "token_embedding.weight": sd["embeddings.token_embedding.weight"],
           p + "positional_embedding": sd["embeddings.position_embedding.weight"],
           p + "ln_final.weight": sd["final_layer_norm.weight"], p + "ln_final.bias": sd["final_layer_norm.bias"]}
    n = text_encoder.config.num_hidden_layers
    layers = [{k.split(".", 3)[3]: v for k, v in sd.items() if k.startswith(f"encoder.layers.{i}.")} for i in range(n)]
    for i, layer in enumerate(layers + ([extra_layer] if extra_layer else [])):
        q = f"{p}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[q + "attn.in_proj_" + kind] = torch.cat([layer[f"self_attn.{x}_proj.{kind}"] for x in "qkv"])
            for a, b in OPEN_CLIP_LAYER.items():
                out[f"{q}{b}.{kind}"] = layer[f"{a}.{kind}"]
    h = text_encoder.config.hidden_size
    # OpenCLIP multiplies by its projection from the right: the transpose of a Linear weight.
    out[p + "text_projection"] = sd["text_projection.weight"].T if "text_projection.weight" in sd else torch.randn(h, h)
    out[p + "logit_scale"] = torch.tensor(4.6052)
    return out


def make_sd2():
    build = os.path.join(FIXTURES, "tokenizer-build-sd2")
    # The first 2,000 of CLIP's merges (the same algorithm, a 2,514-entry vocabulary) and SD 2.x's
    # padding token "!".
    tokenizer = clip_tokenizer(build, n_merges=2000, pad="!")
    unet, vae, text_encoder, scheduler = components_sd2(len(tokenizer))
    pipe = save_folder(unet, vae, text_encoder, tokenizer, scheduler, folder=FOLDER2, build_dir=build)
    tokenizer = CLIPTokenizer.from_pretrained(os.path.join(FOLDER2, "tokenizer"))
    torch.manual_seed(2)
    extra = {k.split(".", 3)[3]: torch.randn_like(v) * 0.1
             for k, v in text_encoder.state_dict().items() if ".encoder.layers.0." in "." + k.removeprefix("text_model.")}
    sd = unet_to_ldm(unet.state_dict(), unet.config)
    sd.update(vae_to_ldm(vae.state_dict(), vae.config))
    sd.update(clip_to_open_clip(text_encoder, extra))
    save_file({k: v.to(torch.float16).contiguous() for k, v in sd.items()}, SINGLE2)

    g, meta = {}, {"prompts": PROMPTS[:3], "prompt": PROMPT, "negative_prompt": NEGATIVE}
    meta["input_ids"] = tokenizer(PROMPTS[:3], padding="max_length", max_length=77, truncation=True)["input_ids"]
    with torch.no_grad():
        pair = torch.tensor(tokenizer([PROMPT, NEGATIVE], padding="max_length", max_length=77, truncation=True)["input_ids"])
        g["text.last_hidden_state"] = text_encoder(pair).last_hidden_state
        gen = torch.Generator().manual_seed(3)
        x, ctx, t = torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 77, 8, generator=gen), torch.tensor([999.0, 10.5])
        g["unet.sample"], g["unet.encoder_hidden_states"], g["unet.timesteps"] = x, ctx, t
        g["unet.out"] = unet(x, t, encoder_hidden_states=ctx).sample
        latents = torch.randn(1, 4, 8, 8, generator=gen)
        g["pipeline.latents"] = latents
        run = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=4, guidance_scale=7.5,
                   height=16, width=16, latents=latents.clone())
        g["pipeline.final_latents"] = pipe(**run, output_type="latent").images
        g["pipeline.image"] = torch.from_numpy(pipe(**run, output_type="np").images).permute(0, 3, 1, 2)
        meta["pipeline.sigmas"] = pipe.scheduler.sigmas.tolist()

        # diffusers reads the single file (without the extra layer, which its fixed ignore list
        # only knows for 24-layer files) to the same outputs.
        check = os.path.join(FIXTURES, "sd2-check.safetensors")
        save_file({k: v for k, v in load_file(SINGLE2).items() if ".resblocks.3." not in k}, check)
        single = StableDiffusionPipeline.from_single_file(check, config=FOLDER2, local_files_only=True,
                                                          safety_checker=None, torch_dtype=torch.float32)
        os.remove(check)
        single.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        assert torch.equal(single.unet(x, t, encoder_hidden_states=ctx).sample, g["unet.out"])
        assert torch.equal(single.text_encoder(pair).last_hidden_state, g["text.last_hidden_state"])
        again = single(**run, output_type="latent").images
        assert torch.allclose(again, g["pipeline.final_latents"], atol=1e-5)

    save_file({k: v.contiguous().float() for k, v in g.items()}, os.path.join(GOLDENS, "goldens-sd2.safetensors"))
    with open(os.path.join(GOLDENS, "goldens-sd2.json"), "w") as f:
        json.dump(meta, f, indent=1)
    make_sd2_inpaint(build, vae, text_encoder, tokenizer, scheduler)
    shutil.rmtree(build)


FOLDER2_INPAINT = os.path.join(FIXTURES, "tiny-sd2-inpaint")


def make_sd2_inpaint(build, vae, text_encoder, tokenizer, scheduler):
    """The SD 2.x-shaped model with an inpainting U-Net (9 input channels: latents, the mask
    and the masked image's latents), run by diffusers' `StableDiffusionInpaintPipeline` at
    strength 1 from fixed latents; the extra channels it fed the U-Net are recorded."""
    torch.manual_seed(6)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=9, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8, attention_head_dim=[2, 4], use_linear_projection=True, norm_num_groups=4,
    )
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    round_weights(unet)
    unet.eval()
    save_folder(unet, vae, text_encoder, tokenizer, scheduler, folder=FOLDER2_INPAINT, build_dir=build)
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                          scheduler=EulerDiscreteScheduler.from_config(scheduler.config),
                                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    gen = torch.Generator().manual_seed(8)
    image = torch.rand(1, 3, 16, 16, generator=gen)
    mask = torch.zeros(1, 1, 16, 16)
    mask[:, :, 4:12, 2:10] = 1.0  # repaint a block aligned with the 2× latent grid
    latents = torch.randn(1, 4, 8, 8, generator=gen)
    with torch.no_grad():
        masked = (image * 2 - 1) * (mask < 0.5)
        masked_latents = vae.encode(masked).latent_dist.mean * vae.config.scaling_factor
        fed = []
        hook = unet.register_forward_pre_hook(lambda m, args, kw: fed.append(args[0][:, 4:].clone()), with_kwargs=True)
        out = pipe(prompt=PROMPT, negative_prompt=NEGATIVE, image=image, mask_image=mask, masked_image_latents=masked_latents,
                   num_inference_steps=4, guidance_scale=7.5, strength=1.0, height=16, width=16,
                   latents=latents.clone(), output_type="latent").images
        hook.remove()
    g = {"image": image, "mask": mask, "latents": latents, "unet_extra": fed[0][:1], "final_latents": out,
         "masked_latents": masked_latents}
    save_file({k: v.contiguous().float() for k, v in g.items()}, os.path.join(GOLDENS, "goldens-sd2-inpaint.safetensors"))


LORA = os.path.join(FIXTURES, "tiny-sd15-lora.safetensors")
LORA_MODULES = {
    "unet": ["down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v",
             "up_blocks.0.attentions.2.transformer_blocks.0.attn1.to_out.0", "mid_block.attentions.0.proj_in",
             "down_blocks.0.resnets.0.conv1", "up_blocks.1.resnets.2.conv2"],
    "te": ["text_model.encoder.layers.0.self_attn.q_proj", "text_model.encoder.layers.4.mlp.fc1"],
}


def make_lora(unet, text_encoder, g):
    """A LoRA in the kohya / web-UI format (`lora_unet_*`, `lora_te_*`: diffusers module paths
    with `_` for `.`, `lora_down`, `lora_up`, `alpha`) of rank 2 and alpha 1 over attention
    projections, a 1×1-convolution projection, two 3×3 convolutions (LoCon: 3×3 down, 1×1 up) and
    text-encoder linears; the U-Net and text-encoder outputs with it merged at multiplier 0.8:
    W + 0.8 · (alpha / rank) · up · down (Hu et al. 2021, eq. 3; kohya's alpha scaling)."""
    torch.manual_seed(9)
    lora, merged = {}, {}
    models = {"unet": unet, "te": text_encoder}
    for part, names in LORA_MODULES.items():
        model = models[part]
        params = dict(model.named_parameters())
        for name in names:
            key = "text_model." + name.removeprefix("text_model.") if part == "te" else name
            w = params.get(key + ".weight", params.get(key.removeprefix("text_model.") + ".weight"))
            out_c, in_c = w.shape[0], w.shape[1]
            kernel = tuple(w.shape[2:])
            down = (torch.randn(2, in_c, *kernel) * 0.3).to(torch.bfloat16).float()
            up = (torch.randn(out_c, 2, *([1] * len(kernel))) * 0.3).to(torch.bfloat16).float()
            kohya = f"lora_{part}_" + name.replace(".", "_")
            lora[kohya + ".lora_down.weight"], lora[kohya + ".lora_up.weight"] = down, up
            lora[kohya + ".alpha"] = torch.tensor(1.0)
            delta = (up.flatten(1) @ down.flatten(1)).reshape(w.shape) * (1.0 / 2) * 0.8
            merged[id(w)] = (w, delta)
    save_file({k: v.contiguous() for k, v in lora.items()}, LORA)
    with torch.no_grad():
        for w, delta in merged.values():
            w.add_(delta)
        g["lora.unet_out"] = unet(g["unet.sample"], g["unet.timesteps"], encoder_hidden_states=g["unet.encoder_hidden_states"]).sample
        ids = torch.tensor(CLIPTokenizer.from_pretrained(os.path.join(FOLDER, "tokenizer"))(
            [PROMPT], padding="max_length", max_length=77, truncation=True)["input_ids"])
        g["lora.text_out"] = text_encoder(ids).last_hidden_state
        for w, delta in merged.values():
            w.sub_(delta)


LORA_XL = os.path.join(FIXTURES, "tiny-sdxl-lora.safetensors")


def make_sdxl_lora(pipe, g, x, t, ctx, added):
    """A kohya-format SDXL LoRA: U-Net modules under their SGM names (`lora_unet_input_blocks_…`,
    `label_emb`), the text encoders as `lora_te1_` / `lora_te2_`; diffusers' own
    `_maybe_map_sgm_blocks_to_diffusers` proves the SGM names. The U-Net output and the prompt's
    conditioning with it merged at 0.8 are recorded."""
    from diffusers.loaders import lora_conversion_utils as lcu
    torch.manual_seed(11)
    unet, te1, te2 = pipe.unet, pipe.text_encoder, pipe.text_encoder_2
    ldm_to_diffusers = {v: k for k, v in {k: k2 for k, k2 in zip(unet.state_dict(), unet_to_ldm(unet.state_dict(), unet.config))}.items()}
    ldm_to_diffusers = {k.removeprefix("model.diffusion_model."): v for k, v in ldm_to_diffusers.items()}
    targets = [("unet", "input_blocks.3.1.transformer_blocks.1.attn1.to_q"), ("unet", "output_blocks.0.0.in_layers.2"),
               ("unet", "middle_block.1.proj_in"), ("unet", "label_emb.0.0"),
               ("te1", "text_model.encoder.layers.0.self_attn.k_proj"), ("te2", "text_model.encoder.layers.2.mlp.fc2")]
    lora, merged = {}, []
    for part, name in targets:
        if part == "unet":
            w = dict(unet.named_parameters())[ldm_to_diffusers[name + ".weight"]]
        else:
            model = te1 if part == "te1" else te2
            params = dict(model.named_parameters())
            w = params.get(name + ".weight", params.get(name.removeprefix("text_model.") + ".weight"))
        kernel = tuple(w.shape[2:])
        down = (torch.randn(2, w.shape[1], *kernel) * 0.3).to(torch.bfloat16).float()
        up = (torch.randn(w.shape[0], 2, *([1] * len(kernel))) * 0.3).to(torch.bfloat16).float()
        key = f"lora_{part}_" + name.replace(".", "_")
        lora[key + ".lora_down.weight"], lora[key + ".lora_up.weight"], lora[key + ".alpha"] = down, up, torch.tensor(1.0)
        merged.append((w, (up.flatten(1) @ down.flatten(1)).reshape(w.shape) * 0.5 * 0.8))
    mapped = lcu._maybe_map_sgm_blocks_to_diffusers({k: v for k, v in lora.items() if k.startswith("lora_unet_")}, unet.config)
    # diffusers renumbers SGM blocks by (level, kind, index): these are down_blocks.1.attentions.0,
    # mid_block.attentions.0 and up_blocks.0.resnets.0 (conv1), the modules targeted above.
    assert {k.split(".")[0] for k in mapped} == {
        "lora_unet_input_blocks_1_attentions_0_transformer_blocks_1_attn1_to_q", "lora_unet_label_emb_0_0",
        "lora_unet_middle_block_attentions_0_proj_in", "lora_unet_output_blocks_0_resnets_0_in_layers_2"}, sorted(mapped)
    assert ldm_to_diffusers["input_blocks.3.1.transformer_blocks.1.attn1.to_q.weight"] == \
        "down_blocks.1.attentions.0.transformer_blocks.1.attn1.to_q.weight"
    assert ldm_to_diffusers["output_blocks.0.0.in_layers.2.weight"] == "up_blocks.0.resnets.0.conv1.weight"
    save_file({k: v.contiguous() for k, v in lora.items()}, LORA_XL)
    for w, delta in merged:
        w.add_(delta)
    g["lora.unet_out"] = unet(x, t, encoder_hidden_states=ctx, added_cond_kwargs=added).sample
    c, _, pc, _ = pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
                                     negative_prompt=NEGATIVE)
    g["lora.cond"], g["lora.pooled_cond"] = c, pc
    for w, delta in merged:
        w.sub_(delta)


# --- tensor names of the released SD 1.5 and SD 2.1 single files -------------------------

RELEASED = {
    "sd15": dict(unet=dict(cross_attention_dim=768), text=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                                                intermediate_size=3072, hidden_act="quick_gelu")),
    "sd21": dict(unet=dict(cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20], use_linear_projection=True),
                 text=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                           hidden_act="gelu")),
}


def released_sdxl_names():
    """The SGM-layout names of the released SDXL base file, proved with diffusers' converters."""
    with torch.device("meta"):
        unet = UNet2DConditionModel(
            block_out_channels=(320, 640, 1280), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), transformer_layers_per_block=(1, 2, 10),
            attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816, sample_size=128)
        vae = AutoencoderKL(block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4,
                            down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)
        te1 = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **RELEASED["sd15"]["text"]))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, hidden_size=1280,
                                                         num_hidden_layers=32, num_attention_heads=20, intermediate_size=5120,
                                                         hidden_act="gelu", projection_dim=1280))
    u = unet_to_ldm(unet.state_dict(), unet.config)
    assert set(s.convert_ldm_unet_checkpoint(u, unet.config)) == set(unet.state_dict())
    v = vae_to_ldm(vae.state_dict(), vae.config)
    t1 = {"conditioner.embedders.0.transformer." + ("" if k.startswith("text_model.") else "text_model.") + k: x
          for k, x in te1.state_dict().items()}
    t2 = clip_to_open_clip(te2, None, p="conditioner.embedders.1.model.")
    got = {k.removeprefix("text_model.") for k in s.convert_open_clip_checkpoint(te2, t2, prefix="conditioner.embedders.1.model.")}
    assert got == {k.removeprefix("text_model.") for k in te2.state_dict()} - {"embeddings.position_ids"}, got ^ set(te2.state_dict())
    return {k: list(x.shape) for k, x in {**u, **v, **t1, **t2}.items()}


def released_names():
    """The original-layout tensor names (and shapes) of the released SD 1.5 and SD 2.1 files,
    made with the writers above on the real configs (on torch's meta device: no weights) and
    proved by diffusers' own converters, which map them back to diffusers' names."""
    out = {}
    for name, cfg in RELEASED.items():
        with torch.device("meta"):
            unet = UNet2DConditionModel(**cfg["unet"])
            vae = AutoencoderKL(block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4,
                                down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)
            text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, **cfg["text"]))
        u = unet_to_ldm(unet.state_dict(), unet.config)
        assert set(s.convert_ldm_unet_checkpoint(u, unet.config)) == set(unet.state_dict())
        v = vae_to_ldm(vae.state_dict(), vae.config)
        assert set(s.convert_ldm_vae_checkpoint(v, vae.config)) == set(vae.state_dict())
        if name == "sd15":
            t = {"cond_stage_model.transformer." + ("" if k.startswith("text_model.") else "text_model.") + k: x
                 for k, x in text.state_dict().items()}
        else:
            layers = text.config.num_hidden_layers
            t = clip_to_open_clip(text, {k.split(".", 3)[3]: x for k, x in text.state_dict().items()
                                         if ".encoder.layers.23." in "." + k.removeprefix("text_model.")})
            t = {k: x for k, x in t.items() if f".resblocks.{layers}." not in k}  # the writer's extra block
            with torch.device("meta"):
                text23 = CLIPTextModel(CLIPTextConfig(vocab_size=49408, max_position_embeddings=77,
                                                      **{**cfg["text"], "num_hidden_layers": 23}))
            got = set(s.convert_open_clip_checkpoint(text23, t))
            want = {k.removeprefix("text_model.") for k in text.state_dict()} - {"embeddings.position_ids"}
            assert {k.removeprefix("text_model.") for k in got} >= {k for k in want if ".layers.23." not in k}
        out[name] = {k: list(x.shape) for k, x in {**u, **v, **t}.items()}
    out["sdxl"] = released_sdxl_names()
    with open(os.path.join(GOLDENS, "released-names.json"), "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)


# --- SDXL: two text encoders, pooled text embeddings, size conditioning -------------------

FOLDER_XL = os.path.join(FIXTURES, "tiny-sdxl")
SINGLE_XL = os.path.join(FIXTURES, "tiny-sdxl.safetensors")


def make_sdxl():
    """An SDXL-shaped model: CLIP (quick GELU) and OpenCLIP-like (GELU, with projection) text
    encoders whose penultimate states are concatenated, the second one's projected pooled state
    and the six size numbers as `text_time` additional conditioning, 1 and 2 transformer blocks
    per level."""
    build = os.path.join(FIXTURES, "tokenizer-build-xl")
    tokenizer = clip_tokenizer(build, n_merges=2000)
    tokenizer_2 = CLIPTokenizer(os.path.join(build, "vocab.json"), os.path.join(build, "merges.txt"), model_max_length=77,
                                pad_token="!")
    vocab = len(tokenizer)
    torch.manual_seed(4)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=4, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=6 * 4 + 8,
        cross_attention_dim=16, norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        norm_num_groups=4, sample_size=16, scaling_factor=0.13025,
    )
    common = dict(vocab_size=vocab, hidden_size=8, intermediate_size=20, num_hidden_layers=3, num_attention_heads=2,
                  max_position_embeddings=77, layer_norm_eps=1e-5, bos_token_id=vocab - 2, eos_token_id=vocab - 1)
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_act="quick_gelu", pad_token_id=vocab - 1, **common))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(hidden_act="gelu", pad_token_id=0, projection_dim=8, **common))
    with torch.no_grad():
        for m in (unet, vae, text_encoder, text_encoder_2):
            for name, p in m.named_parameters():
                if "norm" in name:
                    p.add_(0.1 * torch.randn_like(p))
    for m in (unet, vae, text_encoder, text_encoder_2):
        round_weights(m)
        m.eval()
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        prediction_type="epsilon", timestep_spacing="leading", steps_offset=1,
    )
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(FOLDER_XL, safe_serialization=True)
    for name in ("tokenizer", "tokenizer_2"):
        tok_dir = os.path.join(FOLDER_XL, name)
        os.remove(os.path.join(tok_dir, "tokenizer.json"))
        for f in ("vocab.json", "merges.txt"):
            shutil.copy(os.path.join(build, f), os.path.join(tok_dir, f))
    shutil.rmtree(build)
    # The SGM single file: U-Net, VAE, CLIP under conditioner.embedders.0.transformer, the
    # second encoder in OpenCLIP's layout under conditioner.embedders.1.model (all its layers).
    sd = unet_to_ldm(unet.state_dict(), unet.config)
    sd.update(vae_to_ldm(vae.state_dict(), vae.config))
    for k, t in text_encoder.state_dict().items():
        sd["conditioner.embedders.0.transformer." + ("" if k.startswith("text_model.") else "text_model.") + k] = t
    sd.update(clip_to_open_clip(text_encoder_2, None, p="conditioner.embedders.1.model."))
    save_file({k: v.to(torch.float16).contiguous() for k, v in sd.items()}, SINGLE_XL)

    g, meta = {}, {"prompt": PROMPT, "negative_prompt": NEGATIVE}
    with torch.no_grad():
        c, u, pc, pu = pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
                                          negative_prompt=NEGATIVE)
        g["text.cond"], g["text.uncond"], g["text.pooled_cond"], g["text.pooled_uncond"] = c, u, pc, pu
        gen = torch.Generator().manual_seed(5)
        x, ctx = torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 77, 16, generator=gen)
        pooled, t = torch.randn(2, 8, generator=gen), torch.tensor([999.0, 10.5])
        time_ids = torch.tensor([[16.0, 16, 0, 0, 16, 16], [32.0, 24, 4, 2, 16, 16]])
        g["unet.sample"], g["unet.encoder_hidden_states"], g["unet.timesteps"] = x, ctx, t
        g["unet.text_embeds"], g["unet.time_ids"] = pooled, time_ids
        g["unet.out"] = unet(x, t, encoder_hidden_states=ctx,
                             added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
        latents = torch.randn(1, 4, 8, 8, generator=gen)
        g["pipeline.latents"] = latents
        run = dict(prompt=PROMPT, negative_prompt=NEGATIVE, num_inference_steps=4, guidance_scale=7.5,
                   height=16, width=16, latents=latents.clone())
        g["pipeline.final_latents"] = pipe(**run, output_type="latent").images
        # SDXL's VAE runs in f32 here; diffusers' default `force_upcast` changes nothing in f32.
        g["pipeline.image"] = torch.from_numpy(pipe(**run, output_type="np").images).permute(0, 3, 1, 2)

        single = StableDiffusionXLPipeline.from_single_file(SINGLE_XL, config=FOLDER_XL, local_files_only=True,
                                                            torch_dtype=torch.float32)
        added = {"text_embeds": pooled, "time_ids": time_ids}
        assert torch.equal(single.unet(x, t, encoder_hidden_states=ctx, added_cond_kwargs=added).sample, g["unet.out"])
        ids = torch.tensor(tokenizer([PROMPT], padding="max_length", max_length=77, truncation=True)["input_ids"])
        assert torch.equal(single.text_encoder(ids).last_hidden_state, text_encoder(ids).last_hidden_state)
        # diffusers' loader leaves this tiny second encoder's last layer unloaded (its
        # from_single_file drops it), so its converter proves the OpenCLIP names instead.
        f = {k: v.float() for k, v in load_file(SINGLE_XL).items()}
        conv = s.convert_open_clip_checkpoint(text_encoder_2, f, prefix="conditioner.embedders.1.model.")
        want = text_encoder_2.state_dict()
        assert set(conv) == set(want) and all(torch.equal(conv[k], want[k]) for k in want)
        make_sdxl_lora(pipe, g, x, t, ctx, added)
    save_file({k: v.contiguous().float() for k, v in g.items()}, os.path.join(GOLDENS, "goldens-sdxl.safetensors"))
    with open(os.path.join(GOLDENS, "goldens-sdxl.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
    make_sd2()
    released_names()
    make_sdxl()
