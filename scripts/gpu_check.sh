#!/usr/bin/env bash
# On the lent GPU machine (device tool, carry [".whl", ".tok"] made by scripts/gpu_prepare.sh):
# the CUDA tests, then serving and LoRA-training speed with the exact Qwen2.5-Coder shapes
# (random weights: real ones cannot travel there). Sized for one device call of under 10
# minutes with per-step timeouts; not yet run on a GPU (none has been lent). Results
# land in $OUT (JSON lines and logs) for BENCHMARKS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/pilotfish-gpu}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
# The three folders import as pilotfish.*, as the installed package does.
mkdir -p /tmp/pf/pilotfish
for pkg in lsp_server code_index training; do ln -sfn "$PWD/$pkg" "/tmp/pf/pilotfish/$pkg"; done
export PYTHONPATH=/tmp/pf:/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)" | tee -a "$OUT/gpu.txt"
timeout 120 python3 -m pytest -m gpu tests/engine/test_engine.py tests/training/test_train.py \
  -q -p no:cacheprovider 2>&1 | tee "$OUT/gpu-tests.log"
# Per-step limits add up to 560 s, inside the device tool's 600 s per call.
for size in 0.5b 1.5b; do
  limit=$([ "$size" = 0.5b ] && echo 90 || echo 150)
  timeout "$limit" python3 benchmarks/gpu_engine.py --size "$size" --tokenizer .tok --runs 5 \
    2>>"$OUT/stderr.log" | tee -a "$OUT/engine.jsonl"
done
for size in 0.5b 1.5b; do
  limit=$([ "$size" = 0.5b ] && echo 80 || echo 120)
  timeout "$limit" python3 benchmarks/train_speed.py --size "$size" --steps 12 --device cuda \
    2>>"$OUT/stderr.log" | tee -a "$OUT/train.jsonl"
done
