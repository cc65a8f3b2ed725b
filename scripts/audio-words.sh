#!/usr/bin/env bash
# Real sound for the audio models and metrics, from Debian packages:
#   OUT/words/{train,heldout}/<word>/<voice>.wav : ten command words ("yes", "no", "up", "down",
#       "left", "right", "on", "off", "stop", "go") spoken by espeak-ng (GPL-3; its output is
#       not covered) in 7 English accents x 4 voice variants, 22,050 Hz mono 16-bit: a
#       deterministic, labelled corpus, one folder per word (the folder is the class label).
#       The accents en-029 and en-gb-x-gbcwmd (8 voices, 80 clips) are held out for the
#       metrics; the other 5 accents (20 voices, 200 clips) are for training.
#   OUT/recordings/alsa/*.wav : the nine speech recordings of alsa-utils (GPL-2),
#       48 kHz ("Front left", ..., "Noise").
#   OUT/recordings/freedesktop/*.wav : the sounds of sound-theme-freedesktop (GPL-2+ and
#       other free licences, see its copyright file), decoded from Ogg Vorbis with oggdec.
#   The recordings are a second, unlabelled set; each package's copyright file is copied beside.
# Usage: scripts/audio-words.sh [OUT]   (default data-work/audio-words)
# A class-conditional model of the words (one class per word folder; --labels folders takes
# each clip's sub-folder name as its class), then a guided "yes":
#   stipple train --sound --data OUT/words/train --labels folders --out runs/words
#   stipple sample --model runs/words --class yes --guidance-scale 3 -n 4 -o yes/
# Needs: apt-get (espeak-ng and vorbis-tools are installed when missing; the two sound
#        packages are only downloaded and unpacked), dpkg-deb.
set -euo pipefail
OUT=${1:-data-work/audio-words}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need espeak-ng espeak-ng
need oggdec vorbis-tools

WORDS="yes no up down left right on off stop go"
TRAIN_ACCENTS="en-us en-gb en-gb-scotland en-gb-x-gbclan en-gb-x-rp"
HELDOUT_ACCENTS="en-029 en-gb-x-gbcwmd"
VARIANTS="m1 m3 f2 f4"
rm -rf "$OUT/words"
for split in train heldout; do
  if [ "$split" = train ]; then accents=$TRAIN_ACCENTS; else accents=$HELDOUT_ACCENTS; fi
  for word in $WORDS; do
    mkdir -p "$OUT/words/$split/$word"
    for accent in $accents; do
      for variant in $VARIANTS; do
        espeak-ng -v "$accent+$variant" -w "$OUT/words/$split/$word/$accent-$variant.wav" "$word"
      done
    done
  done
done
{
  echo "Synthesised by $(espeak-ng --version | head -1)"
  echo "words: $WORDS"
  echo "train accents: $TRAIN_ACCENTS; held-out accents: $HELDOUT_ACCENTS; variants: $VARIANTS"
} > "$OUT/words/SOURCE.txt"

RAW="$OUT/raw"
mkdir -p "$RAW"
(
  cd "$RAW"
  for pkg in alsa-utils sound-theme-freedesktop; do
    ls ${pkg}_*.deb >/dev/null 2>&1 || apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$pkg" >/dev/null; }
    [ -d "root-$pkg" ] || { mkdir -p "root-$pkg" && dpkg-deb -x ${pkg}_*.deb "root-$pkg"; }
  done
)
rm -rf "$OUT/recordings"
mkdir -p "$OUT/recordings/alsa" "$OUT/recordings/freedesktop"
cp "$RAW"/root-alsa-utils/usr/share/sounds/alsa/*.wav "$OUT/recordings/alsa/"
cp "$RAW"/root-alsa-utils/usr/share/doc/alsa-utils/copyright "$OUT/recordings/alsa/COPYRIGHT"
for f in "$RAW"/root-sound-theme-freedesktop/usr/share/sounds/freedesktop/stereo/*.oga; do
  oggdec -Q -o "$OUT/recordings/freedesktop/$(basename "${f%.oga}").wav" "$f"
done
cp "$RAW"/root-sound-theme-freedesktop/usr/share/doc/sound-theme-freedesktop/copyright "$OUT/recordings/freedesktop/COPYRIGHT"

for d in words/train words/heldout recordings/alsa recordings/freedesktop; do
  printf '%-24s %4d WAV files\n' "$d" "$(find "$OUT/$d" -name '*.wav' | wc -l)"
done
