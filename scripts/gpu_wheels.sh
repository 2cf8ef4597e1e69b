#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.py needs on a GPU machine that has no network, downloaded here:
#
#   bash scripts/gpu_wheels.sh [DIR]        # default DIR: .gpu_wheels/ (git-ignored)
#
# The device's Python 3.12 already has torch, transformers, accelerate, peft, safetensors, numpy, scipy, pillow and
# opencv; it lacks diffusers and bitsandbytes. bitsandbytes' manylinux wheel (43 MB) carries its library for every
# CUDA and ROCm release; only the CUDA ones named in GPU_WHEELS_CUDA (default "128 130 132": the CUDA 12.8 / 13.0 /
# 13.2 builds of torch 2.9–2.15) and the CPU one are kept, RECORD rewritten to match, so the working tree plus the
# wheels stays under the 64 MiB that travels with a device call. The slimmed wheels are installed into a scratch
# folder and imported here as a check. On the GPU machine (see README, "GPU check"):
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu_wheels/*.whl \
#     && PYTHONPATH=/tmp/site python3 benchmarks/gpu_check.py --out "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${1:-.gpu_wheels}
DIFFUSERS=0.42.1      # requirements.txt: diffusers>=0.42,<0.43
BITSANDBYTES=0.50.2   # requirements.txt: bitsandbytes>=0.50,<1
KEEP_CUDA=${GPU_WHEELS_CUDA:-"128 130 132"}
LIMIT_MIB=64

rm -rf "$DIR"
mkdir -p "$DIR"
python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$DIR" "diffusers==$DIFFUSERS" "bitsandbytes==$BITSANDBYTES" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

python - "$DIR" $KEEP_CUDA <<'PY'
"""Drop bitsandbytes' native libraries for other CUDA/ROCm/XPU releases from its wheel; rewrite RECORD to match."""
import csv
import io
import sys
import zipfile
from pathlib import Path

folder, keep = Path(sys.argv[1]), {f"libbitsandbytes_cuda{v}.so" for v in sys.argv[2:]} | {"libbitsandbytes_cpu.so"}
(wheel,) = folder.glob("bitsandbytes-*.whl")
slim = wheel.with_suffix(".slim")
dropped = []
with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
    names = [i.filename for i in src.infolist()]
    for info in src.infolist():
        base = info.filename.rsplit("/", 1)[-1]
        if base.startswith("libbitsandbytes_") and base.endswith(".so") and base not in keep:
            dropped.append(base)
            continue
        data = src.read(info)
        if info.filename.endswith(".dist-info/RECORD"):
            rows = [r for r in csv.reader(io.StringIO(data.decode())) if r and r[0].rsplit("/", 1)[-1] not in dropped]
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            data = out.getvalue().encode()
        dst.writestr(info, data)
missing = sorted(keep - {n.rsplit("/", 1)[-1] for n in names})
if missing:
    sys.exit(f"{wheel.name} has no {', '.join(missing)}: set GPU_WHEELS_CUDA to the CUDA releases it ships")
slim.replace(wheel)
print(f"{wheel.name}: kept {', '.join(sorted(keep))}; dropped {len(dropped)} other native libraries")
PY

# the slimmed wheels install and import (here: the CPU library; there: the CUDA one torch asks for)
CHECK=$(mktemp -d)
trap 'rm -rf "$CHECK"' EXIT
python -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile --target "$CHECK" "$DIR"/*.whl
PYTHONPATH="$CHECK" python -c "import bitsandbytes, diffusers; print('import check: bitsandbytes', bitsandbytes.__version__, '/ diffusers', diffusers.__version__)"

# what travels with a device call: tracked files + untracked files git does not ignore + these wheels
WHEELS=$(du -cb "$DIR"/*.whl | tail -1 | cut -f1)
TREE=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r du -cb 2>/dev/null \
        | awk '$2 == "total" {s += $1} END {print s + 0}')
ls -l "$DIR"
python - "$WHEELS" "$TREE" "$LIMIT_MIB" <<'PY'
import sys

wheels, tree, limit = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
mib = 2**20
print(f"wheels {wheels / mib:.1f} MiB + working tree {tree / mib:.1f} MiB = {(wheels + tree) / mib:.1f} MiB "
      f"of the {limit} MiB a device call carries")
if wheels + tree > limit * mib:
    sys.exit("too large to travel: drop a CUDA release from GPU_WHEELS_CUDA or trim the working tree")
PY
