"""Reference outputs of a tiny diffusers UNet2DModel for stipple-nn's conformance test.

Made with diffusers 0.42.1, torch 2.15.0 (CPU, float32), safetensors; run from the repo root:

    python tests/reference/make_unet_reference.py

Writes crates/stipple-nn/tests/fixtures/tiny_unet/{config.json,diffusion_pytorch_model.safetensors}
(save_pretrained, random weights from torch.manual_seed(0)) and
crates/stipple-nn/tests/fixtures/tiny_unet_reference.safetensors with the fixed input `x`
(2, 3, 8, 8), continuous `timesteps` (2,) and the model's output `out` (2, 3, 8, 8).

A second, smaller model exercises the other options: class embedding, `flip_sin_to_cos=False`,
`freq_shift=1`, one attention head (`attention_head_dim=None`), `center_input_sample=True`,
`mid_block_scale_factor=2`, 3 levels, 2 layers per block, 1 input channel ->
tests/fixtures/tiny_unet_classes/ and tests/fixtures/tiny_unet_classes_reference.safetensors
(with `class_labels`).
"""

from pathlib import Path

import torch
from diffusers import UNet2DModel
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[2] / "crates" / "stipple-nn" / "tests" / "fixtures"


def main() -> None:
    torch.manual_seed(0)
    model = UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
        attention_head_dim=8,
    ).eval()
    print("parameters:", sum(p.numel() for p in model.parameters()))
    model.save_pretrained(OUT / "tiny_unet", safe_serialization=True)

    g = torch.Generator().manual_seed(42)
    x = torch.randn(2, 3, 8, 8, generator=g)
    # Continuous values: a fractional DDPM step and an EDM-style ln(sigma)/4 (negative).
    timesteps = torch.tensor([500.5, -0.3], dtype=torch.float32)
    with torch.no_grad():
        out = model(x, timesteps).sample
    save_file(
        {"x": x.contiguous(), "timesteps": timesteps, "out": out.contiguous()},
        str(OUT / "tiny_unet_reference.safetensors"),
    )
    print("out[0,0,0,:4]:", out[0, 0, 0, :4].tolist())

    torch.manual_seed(1)
    model = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=2,
        block_out_channels=(4, 8, 8),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=2,
        attention_head_dim=None,
        num_class_embeds=5,
        flip_sin_to_cos=False,
        freq_shift=1,
        center_input_sample=True,
        mid_block_scale_factor=2.0,
    ).eval()
    print("parameters (classes):", sum(p.numel() for p in model.parameters()))
    model.save_pretrained(OUT / "tiny_unet_classes", safe_serialization=True)
    g = torch.Generator().manual_seed(43)
    x = torch.randn(3, 1, 8, 8, generator=g)
    timesteps = torch.tensor([0.0, 999.0, 0.125], dtype=torch.float32)
    class_labels = torch.tensor([4, 0, 2], dtype=torch.int64)
    with torch.no_grad():
        out = model(x, timesteps, class_labels=class_labels).sample
    save_file(
        {
            "x": x.contiguous(),
            "timesteps": timesteps,
            "class_labels": class_labels,
            "out": out.contiguous(),
        },
        str(OUT / "tiny_unet_classes_reference.safetensors"),
    )


if __name__ == "__main__":
    main()
