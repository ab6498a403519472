#!/usr/bin/env bash
# Install torch into a venv before anything else, without ever pulling CUDA on a CPU box.
#   macOS:                 the standard wheel (MPS).
#   Linux with nvidia-smi: the standard wheel (CUDA).
#   Linux without a GPU:   a CPU build: first a local wheel from pip's configured
#                          find-links (offline machines carry one), else PyTorch's CPU index.
# Usage: scripts/install_torch.sh VENV_PYTHON [SPEC]
set -euo pipefail
py=$1
spec=${2:-torch==2.13.0}
version=${spec#torch==}
cpu_index=${TORCH_CPU_INDEX_URL:-https://download.pytorch.org/whl/cpu}

installed=$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [[ -n "$installed" && "${installed%%+*}" == "$version" ]]; then
    echo "torch $installed already installed"
    exit 0
fi

if [[ "$(uname -s)" == "Linux" ]] && ! command -v nvidia-smi >/dev/null 2>&1; then
    if "$py" -m pip install -q --no-index --no-deps "$spec" 2>/dev/null; then
        echo "torch: CPU build from a local wheel"
    else
        "$py" -m pip install -q --no-deps --index-url "$cpu_index" "$spec"
        echo "torch: CPU build from the PyTorch CPU index"
    fi
    # Its own small dependencies (filelock, sympy, ...); torch itself is already satisfied.
    "$py" -m pip install -q "$spec"
else
    "$py" -m pip install -q "$spec"
fi
"$py" - <<'PY'
import torch
build = "cuda" if torch.version.cuda else "cpu"
print(f"torch {torch.__version__} ({build} build)")
PY
