#!/usr/bin/env bash
# Builds the virtual environment of the compat lane (pytest -m compat): the stack of the oldest
# training image detectctl maps to, pytorch-training:1.12.1-gpu-py38 (P2 instances): Python 3.8,
# torch 1.12.1, torchvision 0.13.1, from PyPI (torch's wheel is about 780 MB).
#
#   bash tests/compat/build_venv.sh [VENV]      # default: $DETECTCTL_COMPAT_VENV or
#                                               # /tmp/detectctl-compat-venv
# Python 3.8 is $PYTHON if set, else python3.8 on the PATH, else the newest 3.8 under pyenv
# ($PYENV_ROOT, default ~/.pyenv). Idempotent: an existing complete venv is left as it is.
set -euo pipefail
venv="${1:-${DETECTCTL_COMPAT_VENV:-/tmp/detectctl-compat-venv}}"
check='import sys, torch, torchvision, numpy, PIL
assert sys.version_info[:2] == (3, 8), sys.version
assert torch.__version__.split("+")[0] == "1.12.1", torch.__version__
assert torchvision.__version__.split("+")[0] == "0.13.1", torchvision.__version__'

find_python() {
    local candidate
    for candidate in ${PYTHON:-} $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.8.*/bin/python3.8 \
            2>/dev/null | sort -V -r) $(command -v python3.8 || true); do
        if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "compat lane: no Python 3.8 found (set PYTHON, or: pyenv install 3.8)" >&2
    return 1
}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    echo "compat lane: $venv is ready"
    exit 0
fi
python=$(find_python)
echo "compat lane: building $venv with $python"
if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv")" ]; then
    echo "compat lane: $venv exists and is not a virtual environment; not touching it" >&2
    exit 1
fi
"$python" -m venv --clear "$venv"
"$venv/bin/pip" install -q torch==1.12.1 torchvision==0.13.1 "numpy<1.25" Pillow 2>&1 \
    | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "$check"
"$venv/bin/python" -c 'import sys, torch, torchvision, numpy, PIL
print("compat lane: Python", sys.version.split()[0], "torch", torch.__version__, "torchvision",
      torchvision.__version__, "numpy", numpy.__version__, "Pillow", PIL.__version__)'
echo "compat lane: $venv is ready"
