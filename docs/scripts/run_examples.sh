#!/usr/bin/env bash
# Run the examples the tutorials show and keep their output next to the pages.
# Not run by the docs build (which only reads the committed output); rerun by hand
# from the repository root, all four or the ones named:
#
#     bash docs/scripts/run_examples.sh [PYTHON [char_lm|sequence_classification|forecasting|adding_problem ...]]
#
# One core (core 1) and one thread (numba and BLAS), so that runs on a shared
# machine stay comparable.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-python}
shift || true
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(char_lm sequence_classification forecasting adding_problem)
OUT=docs/tutorials/output
mkdir -p "$OUT"
export NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
run() {  # name, then the example's arguments
    local name=$1
    shift
    echo "== $name $*" >&2
    {
        if [ $# -gt 0 ]; then echo "\$ python examples/$name.py $(printf '%q ' "$@")"; else echo "\$ python examples/$name.py"; fi
        taskset -c 1 nice -n 19 "$PY" "examples/$name.py" "$@"
    } > "$OUT/$name.txt" 2>&1
}
for name in "${NAMES[@]}"; do
    case $name in
        char_lm)
            run char_lm --text ../shared/data/timemachine.txt --hidden 256 --epochs 40 \
                --max-seconds 150 --prefix "time traveller " "the time machine " --length 100
            "$PY" docs/scripts/plot_char_lm.py ;;
        *) run "$name" ;;
    esac
done
