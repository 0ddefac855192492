#!/usr/bin/env bash
# GPU check (issues 15 and 28): the GPU tests, then the optimiser, capacity and sweep benchmarks on CUDA, one table.
#
#     bash benchmarks/gpu_check.sh            # from the repository root; at most 9.5 minutes on one GPU
#
# On a machine whose own python3 has a CUDA build of PyTorch (and the package's other requirements)
# but no .venv, nothing needs installing: PYTHON=python3 PYTHONPATH=src bash benchmarks/gpu_check.sh
#
# Fails at once, with a message, where PyTorch sees no CUDA GPU. Shortened settings keep each step
# within its limit, the cheap and sure ones first: the optimiser step by kernel, capacity on 20
# batches per group (scaled to the epoch), the Wine sweep at 10 epochs (the vmap recipe at 2,
# scaled), and last the sweep compiled (CUDA graphs) from a cold and then a warm cache, each in a
# new process (3 epochs). The limits, 570 s in all, fit what one H200 took (changelog, issue 28):
# the four steps before the last 242 s together (the tests 65 s), the compiled sweep 216 s. A step
# that fails or times out is reported in the table and the others still run (the
# script then exits 1). Logs are kept in $LOG_DIR (default: a temporary folder). Eager against
# compiled steps block by block, longer: bench_capacity.py --device cuda --max-steps 20 --compare.
set -uo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
LOG_DIR=${LOG_DIR:-$(mktemp -d)}
failed=()
took=()

step() {  # step NAME SECONDS COMMAND...: run it with a time limit, log to $LOG_DIR/NAME.txt, note a failure
    local name=$1 seconds=$2
    shift 2
    local started=$SECONDS
    timeout "$seconds" "$@" 2>&1 | tee "$LOG_DIR/$name.txt"
    local status=${PIPESTATUS[0]}
    took+=("$name $((SECONDS - started)) s")
    [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: PyTorch sees no CUDA GPU here ($("$PYTHON" -c 'import torch; print(torch.__version__)')); nothing was run" >&2
    exit 1
fi
"$PYTHON" -c 'import torch; print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)'

step tests 120 "$PYTHON" -m pytest -q tests/test_gpu.py
step optimizer 40 "$PYTHON" benchmarks/bench_optimizer.py --device cuda
step capacity 60 "$PYTHON" benchmarks/bench_capacity.py --device cuda --max-steps 20 --workers 1
step sweep 120 "$PYTHON" benchmarks/bench_sweep.py --device cuda --epochs 10 --vmap-epochs 2 --sequential 3 \
    --workers 1 --json "$LOG_DIR/sweep.json"
step sweep-compiled 230 "$PYTHON" benchmarks/bench_sweep.py --device cuda --epochs 3 --vmap-epochs 1 --sequential 1 \
    --workers 1 --compile --json "$LOG_DIR/sweep-compiled.json"

echo
echo "| check | result |"
echo "| --- | --- |"
echo "| GPU tests | $(tail -1 "$LOG_DIR/tests.txt") |"
grep -E "^(adam|sgd)" "$LOG_DIR/optimizer.txt" | sed 's/^/| optimiser step | /; s/$/ |/'
grep -E "^(engine|vmap recipe|sequential|speed-up|peak)" "$LOG_DIR/sweep.txt" | sed 's/^/| sweep (10 epochs) | /; s/$/ |/'
grep -E "^(wine|adult|circles|abalone|absenteeism|autism|full grid|peak)" "$LOG_DIR/capacity.txt" \
    | sed 's/^/| capacity | /; s/$/ |/'
grep -E "^engine, compiled" "$LOG_DIR/sweep-compiled.txt" | sed 's/^/| sweep compiled (3 epochs) | /; s/$/ |/'
echo "| seconds | ${took[*]} |"
if [ ${#failed[@]} -gt 0 ]; then
    echo "| failed | ${failed[*]} |"
    exit 1
fi
