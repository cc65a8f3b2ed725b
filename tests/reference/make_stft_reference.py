"""Reference values for crates/stipple-audio's STFT: `torch.stft` magnitudes (periodic Hann
window, center=True, reflect padding) of a fixed clip at two resolutions, and the
multi-resolution STFT distance of Parallel WaveGAN (Yamamoto et al. 2020, eqs. 4-6: spectral
convergence plus mean absolute log-magnitude difference, magnitudes floored at 1e-7) over
(64, 16) and (128, 32), computed from those magnitudes in torch.

Run from the repository root in a venv with torch (tests/reference/requirements-sd.txt):
    python tests/reference/make_stft_reference.py
Writes tests/reference/audio/stft.json.
"""
import json

import torch

g = torch.Generator().manual_seed(20261206)
n = 1000
t = torch.arange(n, dtype=torch.float64)
clip = (0.5 * torch.sin(0.07 * t) + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)).float()
other = (0.4 * torch.sin(0.09 * t) + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)).float()


def mag(x, n_fft, hop):
    return torch.stft(x.double(), n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64), center=True,
                      pad_mode="reflect", return_complex=True).abs()


out = {"clip": clip.tolist(), "other": other.tolist(), "stft": {}}
for n_fft, hop in [(64, 16), (128, 32)]:
    out["stft"][f"{n_fft},{hop}"] = mag(clip, n_fft, hop).T.tolist()  # frames x bins
total = 0.0
for n_fft, hop in [(64, 16), (128, 32)]:
    a, b = mag(other, n_fft, hop), mag(clip, n_fft, hop)
    sc = torch.linalg.norm(b - a) / torch.linalg.norm(b)
    log = (b.clamp(min=1e-7).log() - a.clamp(min=1e-7).log()).abs().mean()
    total += float(sc + log)
out["mr_stft_distance"] = total / 2
with open("tests/reference/audio/stft.json", "w") as f:
    json.dump(out, f)
