#!/usr/bin/env bash
# The GPU figures of issue 17 in one call (well under ten minutes on one GPU):
#   batched agent-steps/s at 65,536 copies, MAPPO env-steps/s on the signalling and the
#   private-coordination scenarios, LLM decisions/s in score mode for 64 agents, llm-ppo steps/s.
# Without CUDA it says so and exits 0.   Usage: benchmarks/gpu_check.sh [python]
set -u
cd "$(dirname "$0")/.."
PY="${1:-${PYTHON:-python}}"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" 2>/dev/null; then
    echo "gpu_check: no CUDA device here (torch.cuda.is_available() is false): nothing to measure"
    exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
# each figure bounded; the whole script stays under ten minutes even when a part hangs
exec timeout 540 "$PY" benchmarks/gpu_check.py --device cuda --seconds 5
