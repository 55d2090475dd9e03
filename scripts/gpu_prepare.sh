#!/usr/bin/env bash
# Here, before a device run: the wheels the lent GPU machine lacks (Python 3.12 there) into .whl/
# and the real Qwen tokenizer into .tok/, both git-ignored; then carry [".whl", ".tok"] with
# `bash scripts/gpu_check.sh` (see BENCHMARKS.md, "GPU: how to take the numbers").
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qxF '/.tok/' .git/info/exclude 2>/dev/null || echo '/.tok/' >> .git/info/exclude
mkdir -p .whl .tok
# What the GPU tests and benchmarks import that the machine's image does not hold.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  cattrs platformdirs gitpython gitdb smmap "tree-sitter>=0.25,<0.27" tree-sitter-python \
  pytest-asyncio gguf
tok=${PILOTFISH_HOME:-$HOME/.local/share/pilotfish}/models/qwen2.5-coder-0.5b
cp "$tok/tokenizer.json" "$tok/tokenizer_config.json" .tok/
du -sh .whl .tok
