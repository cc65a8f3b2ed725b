"""Reference output of a tiny DiffWave for stipple-nn's conformance test (tests/diffwave.rs).

The PyTorch model below follows the reference implementation lmnt-com/diffwave
(`src/diffwave/model.py`: `DiffusionEmbedding`, `ResidualBlock`, `DiffWave`) of Kong et al.
2021, *DiffWave: A Versatile Diffusion Model for Audio Synthesis* (ICLR), unconditional
(no spectrogram upsampler), with the options Stipple adds:
- `in_channels` / `out_channels` (the reference: 1 and 1, `audio.unsqueeze(1)`);
- `embedding_dim`, the width of the step embedding's projections (the reference: 512);
- a class embedding of `num_class_embeds` rows added to the step embedding after its last
  SiLU (the reference has none).
The step-embedding table is built in float64 and cast to float32 (the reference builds it in
float32, whose sin(t * 10^4) is off by up to 1e-3 at t = 50); at the integer steps used here
the reference indexes that table, which is what Stipple's continuous embedding gives there.

Random weights from torch.manual_seed(0) with the reference's initialisation, except that
the zero-initialised last projection gets random weights too (else the output would not
depend on the network). Made with torch 2.15.0 and safetensors 0.8.0 (CPU, float32; pins in
requirements-diffwave.txt); run from the repository root:

    python tests/reference/make_diffwave_reference.py

Writes crates/stipple-nn/tests/fixtures/diffwave_tiny.safetensors (the weights under the
reference's state-dict names, the config as JSON in the metadata key "config") and
crates/stipple-nn/tests/fixtures/diffwave_tiny_reference.safetensors (input `x` (3, 1, 50),
integer `timesteps` (3,) as float32, `class_labels` (3,) int64, output `out` (3, 1, 50)).
"""

import json
from math import sqrt
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

OUT = Path(__file__).resolve().parents[2] / "crates" / "stipple-nn" / "tests" / "fixtures"

CONFIG = {
    "in_channels": 1,
    "out_channels": 1,
    "residual_layers": 5,
    "residual_channels": 8,
    "dilation_cycle_length": 3,  # dilations 1, 2, 4, 1, 2
    "embedding_dim": 32,
    "num_class_embeds": 4,  # three classes and the "no label" token 3
}
MAX_STEPS = 50


def Conv1d(*args, **kwargs):
    layer = nn.Conv1d(*args, **kwargs)
    nn.init.kaiming_normal_(layer.weight)
    return layer


class DiffusionEmbedding(nn.Module):
    def __init__(self, max_steps, dim):
        super().__init__()
        self.register_buffer("embedding", self._build_embedding(max_steps), persistent=False)
        self.projection1 = nn.Linear(128, dim)
        self.projection2 = nn.Linear(dim, dim)

    def forward(self, diffusion_step):
        x = self.embedding[diffusion_step]
        x = F.silu(self.projection1(x))
        return F.silu(self.projection2(x))

    @staticmethod
    def _build_embedding(max_steps):
        steps = torch.arange(max_steps, dtype=torch.float64).unsqueeze(1)  # [T, 1]
        dims = torch.arange(64, dtype=torch.float64).unsqueeze(0)  # [1, 64]
        table = steps * 10.0 ** (dims * 4.0 / 63.0)  # [T, 64]
        return torch.cat([torch.sin(table), torch.cos(table)], dim=1).float()


class ResidualBlock(nn.Module):
    def __init__(self, residual_channels, dilation, dim):
        super().__init__()
        self.dilated_conv = Conv1d(residual_channels, 2 * residual_channels, 3, padding=dilation, dilation=dilation)
        self.diffusion_projection = nn.Linear(dim, residual_channels)
        self.output_projection = Conv1d(residual_channels, 2 * residual_channels, 1)

    def forward(self, x, diffusion_step):
        diffusion_step = self.diffusion_projection(diffusion_step).unsqueeze(-1)
        y = self.dilated_conv(x + diffusion_step)
        gate, filter = torch.chunk(y, 2, dim=1)
        y = torch.sigmoid(gate) * torch.tanh(filter)
        y = self.output_projection(y)
        residual, skip = torch.chunk(y, 2, dim=1)
        return (x + residual) / sqrt(2.0), skip


class DiffWave(nn.Module):
    """`p`: the keys of Stipple's `DiffWaveConfig` (all of them); the step-embedding table
    covers the integer steps below `max_steps`."""

    def __init__(self, p, max_steps=MAX_STEPS):
        super().__init__()
        c = p["residual_channels"]
        self.input_projection = Conv1d(p["in_channels"], c, 1)
        self.diffusion_embedding = DiffusionEmbedding(max_steps, p["embedding_dim"])
        classes = p["num_class_embeds"]
        self.class_embedding = nn.Embedding(classes, p["embedding_dim"]) if classes is not None else None
        self.residual_layers = nn.ModuleList(
            [ResidualBlock(c, 2 ** (i % p["dilation_cycle_length"]), p["embedding_dim"]) for i in range(p["residual_layers"])]
        )
        self.skip_projection = Conv1d(c, c, 1)
        self.output_projection = Conv1d(c, p["out_channels"], 1)
        nn.init.zeros_(self.output_projection.weight)

    def forward(self, audio, diffusion_step, class_labels=None):
        x = F.relu(self.input_projection(audio))
        emb = self.diffusion_embedding(diffusion_step)
        if self.class_embedding is not None:
            emb = emb + self.class_embedding(class_labels)
        skip = None
        for layer in self.residual_layers:
            x, skip_connection = layer(x, emb)
            skip = skip_connection if skip is None else skip_connection + skip
        x = skip / sqrt(len(self.residual_layers))
        x = F.relu(self.skip_projection(x))
        return self.output_projection(x)


def main() -> None:
    torch.manual_seed(0)
    model = DiffWave(CONFIG).eval()
    with torch.no_grad():
        model.output_projection.weight.normal_(0.0, 0.3)
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    print("parameters:", sum(v.numel() for v in weights.values()))
    save_file(weights, OUT / "diffwave_tiny.safetensors", metadata={"config": json.dumps(CONFIG)})

    g = torch.Generator().manual_seed(42)
    x = torch.randn(3, CONFIG["in_channels"], 50, generator=g)
    steps = torch.tensor([0, 7, 49])
    labels = torch.tensor([0, 3, 1])
    with torch.no_grad():
        out = model(x, steps, labels)
    save_file(
        {"x": x, "timesteps": steps.float(), "class_labels": labels, "out": out.contiguous()},
        OUT / "diffwave_tiny_reference.safetensors",
    )
    print("out: mean", out.mean().item(), "std", out.std().item())


if __name__ == "__main__":
    main()
