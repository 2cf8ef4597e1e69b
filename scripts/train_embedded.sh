#!/usr/bin/env bash
# Reproduce the shipped embedded model (assets/embedded) on a 2-core CPU, about 50 minutes in all:
#   synth data (2,000 pairs) → stage 1 (36 min budget) → vitality (N=8, 10 steps, top-3) → stage 2 (150 × 8 pairs).
# Usage: bash scripts/train_embedded.sh [DATA_DIR] [RUNS_DIR]; then copy RUNS_DIR/stage2 to assets/embedded.
# On a GPU: raise --steps/--batch, drop --time-budget, and add --device cuda (see README "Training").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/synth}
RUNS=${2:-data/runs}
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
stamp() { echo "=== $(date '+%F %T') $*"; }

[ -f "$DATA/manifest.json" ] || { stamp "synth"; python -m legend_demo synth --n 2000 --out "$DATA" --seed 0 --workers 2; }
stamp "stage1"
python -m legend_demo train stage1 --data "$DATA" --out "$RUNS/stage1" --model embedded \
  --steps 1500 --batch 16 --lr 3e-4 --warmup 100 --ema 0.999 --checkpoint-every 100 \
  --time-budget 36 --threads 2 --seed 0
stamp "vitality"
python -m legend_demo train vitality --data "$DATA" --out "$RUNS/vitality" --init "$RUNS/stage1" \
  --samples 8 --sample-steps 10 --top-k 3 --threads 2 --seed 0
stamp "stage2"
python -m legend_demo train stage2 --data "$DATA" --out "$RUNS/stage2" --init "$RUNS/vitality" \
  --steps 150 --batch 8 --lr 1e-2 --lesion-weight 3 --checkpoint-every 25 \
  --time-budget 6 --threads 2 --seed 0
stamp "done"
