#!/usr/bin/env bash
# GPU check (issues 15 and 28): the GPU tests, then the sweep and capacity benchmarks on CUDA, one table.
#
#     bash benchmarks/gpu_check.sh            # from the repository root; about 8 minutes on one GPU
#
# On a machine whose own python3 has a CUDA build of PyTorch (and the package's other requirements)
# but no .venv, nothing needs installing: PYTHON=python3 PYTHONPATH=src bash benchmarks/gpu_check.sh
#
# Fails at once, with a message, where PyTorch sees no CUDA GPU. Shortened settings keep it near
# 8 minutes: the Wine sweep at 10 epochs (the vmap recipe at 2, scaled; compiled from a cold and then a
# warm cache, each in a new process), capacity on 20 batches per group (scaled to the epoch). A step that fails or times out is reported in the table and the others
# still run (the script then exits 1). Logs are kept in $LOG_DIR (default: a temporary folder).
set -uo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
LOG_DIR=${LOG_DIR:-$(mktemp -d)}
failed=()

step() {  # step NAME SECONDS COMMAND...: run it with a time limit, log to $LOG_DIR/NAME.txt, note a failure
    local name=$1 seconds=$2
    shift 2
    timeout "$seconds" "$@" 2>&1 | tee "$LOG_DIR/$name.txt"
    local status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: PyTorch sees no CUDA GPU here ($("$PYTHON" -c 'import torch; print(torch.__version__)')); nothing was run" >&2
    exit 1
fi
"$PYTHON" -c 'import torch; print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)'

step tests 120 "$PYTHON" -m pytest -q tests/test_gpu.py
step sweep 360 "$PYTHON" benchmarks/bench_sweep.py --device cuda --epochs 10 --vmap-epochs 2 --sequential 3 \
    --workers 1 --compile --json "$LOG_DIR/sweep.json"
step capacity 120 "$PYTHON" benchmarks/bench_capacity.py --device cuda --max-steps 20 --workers 1
# Eager against CUDA graphs (TrainConfig(compile=True) on CUDA), Wine's three groups, compilation included.
step compiled 150 "$PYTHON" benchmarks/bench_capacity.py --device cuda --max-steps 20 --workers 1 --datasets wine \
    --compare

echo
echo "| check | result |"
echo "| --- | --- |"
echo "| GPU tests | $(tail -1 "$LOG_DIR/tests.txt") |"
grep -E "^(engine|vmap recipe|sequential|speed-up|peak)" "$LOG_DIR/sweep.txt" | sed 's/^/| sweep (10 epochs) | /; s/$/ |/'
grep -E "^(wine|adult|circles|abalone|absenteeism|autism|full grid|peak)" "$LOG_DIR/capacity.txt" \
    | sed 's/^/| capacity | /; s/$/ |/'
grep -E "^(wine|full grid|compiled)" "$LOG_DIR/compiled.txt" | sed 's/^/| compiled | /; s/$/ |/'
if [ ${#failed[@]} -gt 0 ]; then
    echo "| failed | ${failed[*]} |"
    exit 1
fi
