#!/usr/bin/env bash
# The CUDA check, in one command on a GPU machine that has python3 with torch (CUDA), numpy,
# scikit-learn, pytest, pytest-timeout, httpx, anyio, click and h11 but no network: our other
# runtime dependencies come as wheels in .whl/ (downloaded beforehand, never committed).
#
# Filling .whl/ (on a machine with PyPI; the versions are those `.venv/bin/pip list` shows): for
# fastapi starlette uvicorn httptools uvloop watchfiles websockets pydantic pydantic-core
# pydantic-settings python-dotenv sqlalchemy greenlet alembic mako markupsafe orjson msgspec
# psycopg psycopg-binary typing-extensions typing-inspection annotated-types annotated-doc
# opentelemetry-api (fastapi imports it there), run
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#       --platform manylinux_2_17_x86_64 --platform manylinux1_x86_64 -d .whl NAME==VERSION
# (25 wheels, 19 MiB in November 2026), and carry .whl to the GPU machine with the working tree.
#
#     OUT=/some/folder bash bench/cuda_check.sh      # in the repository root; 3 to 7 minutes
#     DEVICE=cpu bash bench/cuda_check.sh            # the same steps without a GPU (a dry run)
#
# Steps, each bounded by its own time limit: `unit`, the tests whose CUDA cases skip elsewhere;
# `timing`, bench/cuda_check.py (GPU against CPU inference of `std`); `e2e`, the e2e suite on
# SQLite with every shared server on SGT_DEVICE=$DEVICE (last: the longest).
# Each step runs even when an earlier one failed; logs go to $OUT; the exit status is non-zero
# when any step failed.
set -euo pipefail

OUT="${OUT:-/tmp/cuda_check_out}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl 2>&1 | tee "$OUT/install.log"
# Subprocesses (`python -m sgt serve`) inherit this path: sgt is not installed, src/ is on it.
export PYTHONPATH="/tmp/site:$PWD/src"

{
  nvidia-smi -L || echo "nvidia-smi: not available"
  python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
    "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
} 2>&1 | tee "$OUT/env.txt"

names=()
rcs=()
step() { # step NAME SECONDS COMMAND...: run it under a time limit, keep its exit status
  local name="$1" limit="$2" started=$SECONDS rc
  shift 2
  echo "=== $name (limit ${limit}s): $*"
  # SIGINT first, so that pytest tears its fixtures down (stops the servers it started).
  set +e
  timeout -s INT -k 30 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  names+=("$name")
  rcs+=("$rc")
  echo "=== $name: exit $rc after $((SECONDS - started)) s"
}

# The tests with CUDA cases (they skip elsewhere); the other model tests train on the CPU alone.
step unit 150 python3 -m pytest -q -p no:cacheprovider \
  tests/storage/test_checkpoint_devices.py tests/unit/ml/test_forest.py tests/unit/test_config.py
step timing 120 python3 bench/cuda_check.py --device "$DEVICE"
# SGT_E2E_BACKEND=sqlite selects nothing by itself: -m "not postgres" drops the PostgreSQL runs.
step e2e 330 env SGT_TEST_DEVICE="$DEVICE" SGT_E2E_BACKEND=sqlite \
  python3 -m pytest -q -p no:cacheprovider tests/e2e -m "not postgres" --timeout 300 --durations 8

failed=0
{
  echo "=== summary (exit 124: over its time limit)"
  for i in "${!names[@]}"; do
    echo "${names[$i]}: exit ${rcs[$i]}   $(grep -E '(passed|failed|error|OK|FAIL)' \
      "$OUT/${names[$i]}.log" | tail -n 1)"
  done
} | tee "$OUT/summary.txt"
for rc in "${rcs[@]}"; do
  [ "$rc" -eq 0 ] || failed=1
done
exit "$failed"
