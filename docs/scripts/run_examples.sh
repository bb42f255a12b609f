#!/usr/bin/env bash
# Run the four examples the tutorials show and keep their output next to the pages.
# Not run by the docs build (which only reads the committed output); rerun by hand:
#
#     bash docs/scripts/run_examples.sh [PYTHON]
#
# One core and one thread (numba and BLAS), so runs on a shared machine stay comparable.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-python}
OUT=docs/tutorials/output
mkdir -p "$OUT"
export NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
run() {  # name, then the example's arguments
    local name=$1; shift
    echo "== $name $*" >&2
    { echo "\$ python examples/$name.py $(printf '%q ' "$@")"; taskset -c 1 nice -n 19 "$PY" "examples/$name.py" "$@"; } \
        > "$OUT/$name.txt" 2>&1
}
run char_lm --text ../shared/data/timemachine.txt --hidden 256 --epochs 40 --max-seconds 150 \
    --prefix "time traveller " "the time machine " --length 100
run sequence_classification
run forecasting
run adding_problem
"$PY" docs/scripts/plot_char_lm.py
