#!/usr/bin/env bash
# The wheels a bare GPU machine (Python 3.12, x86-64 Linux, torch with CUDA, no network) lacks
# for benchmarks/gpu_check.sh and benchmarks/gpu_motion_full.sh, downloaded here from PyPI into
# .gpu-wheels/ (ignored by git; carry it to the machine). Everything else tc3d imports (torch,
# numpy, pillow, rich, onnx, onnxscript, onnxruntime, scikit-learn, matplotlib, pytest,
# packaging, pyyaml, tqdm, tabulate, portalocker) is already on that machine.
#
#   PyAV      decoding (the one binary wheel, about 34 MiB)
#   fvcore    FLOP counts in tc3d bench, with iopath, yacs and termcolor (pure Python;
#             fvcore and iopath ship source only, so they are built into wheels here)
#
#   bash benchmarks/gpu_wheels.sh [DIR]      # default .gpu-wheels; prints the folder's size
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.gpu-wheels}
PY=${PY:-python3}
mkdir -p "$DIR"
rm -f "$DIR"/*.whl
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64)
# The versions tc3d's own CI installs (pyproject.toml's windows allow them).
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$DIR" \
    av==18.1.0 yacs==0.1.8 termcolor==3.3.0
"$PY" -m pip wheel -q --no-deps -w "$DIR" fvcore==0.1.5.post20221221 iopath==0.1.10
ls -l "$DIR"
du -sh "$DIR"
