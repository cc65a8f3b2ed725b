#!/usr/bin/env bash
# Checks that the workspace compiles with `--features cuda` on a machine without a GPU or a
# CUDA installation: NVIDIA's CUDA 13.2 compiler (nvcc, cicc, the crt headers) and the runtime
# and CCCL headers come from their PyPI wheels (`pip download`, nothing installed), unpacked
# into one CUDA_HOME; candle's kernels are compiled to PTX for compute capability 9.0 (H100/H200).
# Nothing runs on a GPU here; the check is that the build scripts and the Rust code compile.
# It does not link: a binary needs the CUDA driver library (libcuda) and cuBLAS, cuRAND and
# NVRTC, which a GPU machine has (here `cargo build --features cuda` stops at `-lcuda`).
#
# Environment (defaults in brackets): CUDA_DIR [target/cuda-13.2]  TARGET_DIR [target/cuda]
#   PYTHON [python3] (with pip)  COMPUTE_CAP [90]
set -euo pipefail
cd "$(dirname "$0")/.."

CUDA_DIR=${CUDA_DIR:-target/cuda-13.2}
TARGET_DIR=${TARGET_DIR:-target/cuda}
PYTHON=${PYTHON:-python3}
COMPUTE_CAP=${COMPUTE_CAP:-90}

if [ ! -x "$CUDA_DIR/bin/nvcc" ]; then
  wheels=$(mktemp -d)
  # nvcc and the runtime headers must be the same release (13.2); cccl's 13.3 headers accept it.
  "$PYTHON" -m pip download --quiet --no-deps --dest "$wheels" \
    "nvidia-cuda-nvcc==13.2.86" "nvidia-nvvm==13.2.86" "nvidia-cuda-crt==13.2.86" \
    "nvidia-cuda-runtime==13.2.86" "nvidia-cuda-cccl==13.3.5.0.6"
  unpacked="$wheels/unpacked"
  for w in "$wheels"/*.whl; do "$PYTHON" -m zipfile -e "$w" "$unpacked"; done
  mkdir -p "$CUDA_DIR"
  cp -r "$unpacked/nvidia/cu13/." "$CUDA_DIR/"
  chmod +x "$CUDA_DIR"/bin/* "$CUDA_DIR"/nvvm/bin/*
  rm -r "$wheels"
fi
CUDA_DIR=$(realpath "$CUDA_DIR")
"$CUDA_DIR/bin/nvcc" --version | tail -1
# cudarc reads the toolkit version from nvcc unless told; 13.2 is one it knows.
CUDARC_CUDA_VERSION=13020 CUDA_HOME="$CUDA_DIR" CUDA_PATH="$CUDA_DIR" PATH="$CUDA_DIR/bin:$PATH" \
  CUDA_COMPUTE_CAP=$COMPUTE_CAP cargo check --workspace --all-targets --features stipple/cuda --target-dir "$TARGET_DIR"
