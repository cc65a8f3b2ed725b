"""Reference values for crates/stipple-audio's mel features: `librosa.filters.mel` (Slaney mel
scale, htk=False, norm="slaney"), `librosa.power_to_db(librosa.feature.melspectrogram(...))`
(power 2, centred zero-padded STFT with the periodic Hann window, ref=1, amin=1e-10,
top_db=80) and `librosa.feature.mfcc` (dct_type=2, norm="ortho", lifter=0) of a fixed clip
(two tones and noise, float32) under two configurations; the first is
`MelConfig::for_rate(16000)`.

Run from the repository root in a venv with tests/reference/requirements-audio.txt:
    python tests/reference/make_audio_reference.py
Writes tests/reference/audio/mel.json.
"""
import json

import librosa
import numpy as np

rng = np.random.default_rng(20261206)
n = 3000
t = np.arange(n) / 16000.0
clip = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t) * np.linspace(0, 1, n)
        + 0.05 * rng.normal(size=n)).astype(np.float32)
configs = [
    dict(rate=16000, n_fft=1024, hop=256, n_mels=80, fmin=0.0, fmax=8000.0, n_mfcc=20),
    dict(rate=22050, n_fft=512, hop=128, n_mels=26, fmin=50.0, fmax=8000.0, n_mfcc=13),
]


def r(a):
    """Nine significant digits: more than float32 holds, small in JSON."""
    return [float("%.9g" % v) for v in np.asarray(a, dtype=np.float64).ravel()]


out = {"clip": r(clip), "configs": []}
for c in configs:
    kw = dict(sr=c["rate"], n_fft=c["n_fft"], hop_length=c["hop"], n_mels=c["n_mels"], fmin=c["fmin"], fmax=c["fmax"])
    bank = librosa.filters.mel(sr=c["rate"], n_fft=c["n_fft"], n_mels=c["n_mels"], fmin=c["fmin"], fmax=c["fmax"],
                               htk=False, norm="slaney", dtype=np.float64)
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(y=clip, **kw))  # n_mels x frames
    mfcc = librosa.feature.mfcc(y=clip, n_mfcc=c["n_mfcc"], **kw)  # n_mfcc x frames
    entry = dict(config=c, frames=int(log_mel.shape[1]), log_mel_db=r(log_mel.T), mfcc=r(mfcc.T),
                 mel_of_hz={str(h): float(librosa.hz_to_mel(h)) for h in [0.0, 440.0, 1000.0, 3100.0, 8000.0]})
    if c["n_mels"] <= 40:
        entry["filterbank"] = r(bank)
    out["configs"].append(entry)
with open("tests/reference/audio/mel.json", "w") as f:
    json.dump(out, f)
