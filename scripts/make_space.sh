#!/usr/bin/env bash
# A Hugging Face Space repository from this checkout's committed HEAD (see README, "Hugging Face Space"):
#
#   bash scripts/make_space.sh DIR             # CPU or dedicated-GPU hardware: the repository as committed
#   bash scripts/make_space.sh DIR --zerogpu   # ZeroGPU hardware
#
# A Space installs DIR/requirements.txt and nothing else (bitsandbytes is in it, so NF4 is there on CUDA).
# ZeroGPU runs only the torch releases it lists (2.8.0, 2.9.1, 2.10.0, 2.11.0 in Hugging Face's ZeroGPU docs,
# August 2026) on Python 3.12.12 or 3.10.13; the project pins torch==2.13.0 and the front matter says Python 3.11.
# --zerogpu therefore writes torch==$ZEROGPU_TORCH (default 2.11.0) into the Space's requirements.txt and
# python_version "3.12" into its README front matter; nothing else changes. Push DIR to the Space's git remote.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${1:?usage: bash scripts/make_space.sh DIR [--zerogpu]}
MODE=${2:-}
ZEROGPU_TORCH=${ZEROGPU_TORCH:-2.11.0}
if [ -n "$MODE" ] && [ "$MODE" != "--zerogpu" ]; then
  echo "unknown option $MODE (only --zerogpu)" >&2
  exit 2
fi
if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
  echo "$DIR exists and is not empty" >&2
  exit 2
fi
mkdir -p "$DIR"
git archive HEAD | tar -x -C "$DIR"

if [ "$MODE" = "--zerogpu" ]; then
  sed -i "s/^torch==[^ ]*\(.*\)$/torch==$ZEROGPU_TORCH  # a ZeroGPU release (the repository pins 2.13.0)/" "$DIR/requirements.txt"
  sed -i '0,/^python_version: .*/s//python_version: "3.12"/' "$DIR/README.md"
  grep -q "^torch==$ZEROGPU_TORCH " "$DIR/requirements.txt" || { echo "no torch pin rewritten" >&2; exit 1; }
  grep -q '^python_version: "3.12"$' "$DIR/README.md" || { echo "no python_version rewritten" >&2; exit 1; }
  echo "ZeroGPU Space in $DIR: torch==$ZEROGPU_TORCH, Python 3.12 (set the hardware to ZeroGPU in the Space settings)"
else
  echo "Space in $DIR: requirements.txt as committed (torch==2.13.0)"
fi
