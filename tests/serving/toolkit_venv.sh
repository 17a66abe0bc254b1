#!/usr/bin/env bash
# Builds the virtual environment of the toolkit lane (pytest -m toolkit): what SageMaker's PyTorch
# inference image runs, from PyPI: sagemaker-pytorch-inference (the toolkit), torchserve and
# torch-model-archiver, with torch and torchvision; Java for TorchServe from Debian when missing.
#
#   bash tests/serving/toolkit_venv.sh [VENV]      # default: $DETECTCTL_TOOLKIT_VENV or
#                                                  # /tmp/detectctl-toolkit-venv
# Idempotent: an existing complete venv is left as it is.
set -euo pipefail
venv="${1:-${DETECTCTL_TOOLKIT_VENV:-/tmp/detectctl-toolkit-venv}}"
python="${PYTHON:-python3.11}"

if ! java -version >/dev/null 2>&1; then
    echo "toolkit lane: installing Java (openjdk-17-jre-headless) for TorchServe"
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

if [ -x "$venv/bin/serve" ] && "$venv/bin/python" -c "import pkg_resources, yaml, torchvision" \
        2>/dev/null; then
    echo "toolkit lane: $venv is ready"
    exit 0
fi
echo "toolkit lane: building $venv"
"$python" -m venv "$venv"
# torch 2.14.1 / torchvision 0.29.1 install from local files on the project's machines.
# The toolkit imports pkg_resources (gone from setuptools 81) and TorchServe's worker imports
# yaml without declaring it: both are installed here.
"$venv/bin/pip" install -q torch==2.14.1 torchvision==0.29.1 sagemaker-pytorch-inference \
    torchserve torch-model-archiver pyyaml "setuptools<81" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "import sagemaker_pytorch_serving_container, ts, torchvision, yaml, pkg_resources"
"$venv/bin/pip" list 2>/dev/null | grep -i -E "^(sagemaker|torch|pillow|numpy)" || true
echo "toolkit lane: $venv is ready"
