#!/usr/bin/env bash
# The audio metric table of docs/AUDIO.md: the spoken-word corpus of scripts/audio-words.sh,
# measured against its held-out accents: white noise and the training voices as the two ends,
# other real sounds (the freedesktop theme) between them, and any generated set given.
#
# Usage: bench/audio/metrics.sh [NAME=DIR ...]   e.g. bench/audio/metrics.sh "DiffWave 50 steps=out/words"
# Environment (defaults in brackets): DATA [data-work/audio-words]  RATE [16000]  CLIP_SECONDS [1]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-data-work/audio-words}
RATE=${RATE:-16000}
CLIP_SECONDS=${CLIP_SECONDS:-1}
[ -d "$DATA/words/heldout" ] || scripts/audio-words.sh "$DATA" >/dev/null
sets=(--set "real: training voices=$DATA/words/train" --set "other real sounds: freedesktop theme=$DATA/recordings/freedesktop")
for s in "$@"; do sets+=(--set "$s"); done
cargo run -q -p stipple-eval --example audio_metrics -- \
  --reference "$DATA/words/heldout" --rate "$RATE" --seconds "$CLIP_SECONDS" --noise "${sets[@]}"
