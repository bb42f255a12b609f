"""fastrnn against torch, side by side in one process, on the CPU.

Times forward (inference) and forward+backward (training) of one-layer RNN,
LSTM and GRU layers at fixed shapes, float32, and prints the ratio
``fastrnn time / torch time`` (below 1 means fastrnn is faster). Each pair
is timed in alternating rounds (``_common.paired_times``), and forward+backward
computes the same gradients on both sides: the parameters', and the input's
only with ``--input-grad`` (a first layer's input needs none; until
2026-12-06 fastrnn's side computed it and torch's did not).

Usage (speed on a user's default machine: leave BLAS unpinned)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_torch.py
    python benchmarks/compare_torch.py --threads 1 --repeats 20 --json out.json
"""

import argparse
import json
import platform
import time

import numpy as np

import fastrnn as fr
try:  # imported by asv as part of the benchmarks package, or run as a script
    from ._common import (CELLS, SHAPES, best_time, blas_description, fastrnn_runs,
                          load_kernels_blas, paired_times, torch_runs)
except ImportError:
    from _common import (CELLS, SHAPES, best_time, blas_description, fastrnn_runs,
                         load_kernels_blas, paired_times, torch_runs)

load_kernels_blas()   # now, so that --threads limits it

#: Issue 5's goals for forward+backward, fastrnn time / torch time at most this;
#: the "large" shape is judged by its rate against the measured SGEMM rate instead.
GOALS = {
    ("LSTM", "d2l"): 1.0, ("GRU", "d2l"): 0.7, ("RNN", "d2l"): 0.7,
    ("LSTM", "small"): 0.5, ("GRU", "small"): 0.5, ("RNN", "small"): 0.5,
    ("LSTM", "medium"): 1.0, ("GRU", "medium"): 0.7, ("RNN", "medium"): 0.7,
    ("LSTM", "long"): 0.5, ("GRU", "long"): 0.5, ("RNN", "long"): 0.7,
}
#: Share of the SGEMM rate the large shape's forward+backward must reach.
LARGE_GOAL = 0.8
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def sgemm_rate(size=2048, repeats=5):
    """GFLOP/s of a square float32 GEMM through the BLAS the kernels call."""
    from fastrnn.kernels.cpu._common import _project
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    out = np.empty_like(a)
    seconds = best_time(lambda: _project(a, a, np.empty(0, np.float32), out), repeats)
    return 2 * size ** 3 / seconds / 1e9


def training_gflops(cell, shape, input_grad=False):
    """Multiply-adds x 2 of one forward+backward, in ``T * B * G * H`` times: ``I + H``
    for the forward, ``H`` for the state gradients, ``I`` for the input gradient
    (when computed) and ``I + H`` for the weight gradients."""
    steps, batch, inputs, hidden = shape
    per_row = 2 * (inputs + hidden) + hidden + (inputs if input_grad else 0)
    return 2 * steps * batch * _GATES[cell] * hidden * per_row / 1e9


def verdict(cell, name, row, sgemm, input_grad=False):
    """``(goal text, PASS/MISS)`` of one row."""
    if name == "large":
        share = training_gflops(cell, SHAPES[name], input_grad) / row["train"] / sgemm
        row["share_of_sgemm"] = share
        return f">={LARGE_GOAL:.0%} SGEMM ({share:.0%})", (
            "PASS" if share >= LARGE_GOAL else "MISS")
    goal = GOALS[(cell, name)]
    return f"<={goal:.1f}", "PASS" if row["train_ratio"] <= goal else "MISS"


def measure(torch, cell, name, dtype, repeats, input_grad=False):
    """Median times of fastrnn and torch, forward and forward+backward, and their ratios
    (each pair timed in alternating rounds, :func:`paired_times`)."""
    layer, fwd, train = fastrnn_runs(cell, SHAPES[name], dtype, input_grad=input_grad)
    t_fwd, t_train = torch_runs(torch, layer, SHAPES[name], input_grad=input_grad)
    times = {}
    times["fwd"], times["torch_fwd"] = paired_times(fwd, t_fwd, repeats)
    times["train"], times["torch_train"] = paired_times(train, t_train, repeats)
    return dict(cell=cell, shape=name, dtype=dtype.name, dims=SHAPES[name], **times,
                fwd_ratio=times["fwd"] / times["torch_fwd"],
                train_ratio=times["train"] / times["torch_train"])


def plot(rows, path):
    """Bar chart of the float32 forward+backward ratios, one group per shape, with goals."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot skipped: matplotlib is not installed (pip install matplotlib)")
        return
    rows = [row for row in rows if row["dtype"] == "float32" and row["shape"] != "large"]
    shapes = list(dict.fromkeys(row["shape"] for row in rows))
    cells = list(dict.fromkeys(row["cell"] for row in rows))
    figure, axes = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(cells)
    for index, cell in enumerate(cells):
        for position, shape in enumerate(shapes):
            row = next((r for r in rows if r["cell"] == cell and r["shape"] == shape), None)
            if row is None:
                continue
            x = position + (index - (len(cells) - 1) / 2) * width
            axes.bar(x, row["train_ratio"], width, color=f"C{index}",
                     label=cell if position == 0 else None)
            goal = GOALS.get((cell, shape))
            if goal:
                axes.plot([x - width / 2, x + width / 2], [goal, goal], color="black", lw=1.5)
    axes.axhline(1.0, color="grey", lw=0.8, ls="--")
    axes.set_xticks(range(len(shapes)), shapes)
    axes.set_ylabel("fastrnn time / torch time (forward+backward)")
    axes.set_title("fastrnn vs torch 2.13 on the CPU, float32 (black: goal; below 1: faster)")
    axes.set_yscale("log")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"chart written to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="limit torch, numba and BLAS to this many threads")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--cells", nargs="*", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--dtypes", nargs="*", default=["float32"],
                        choices=["float32", "float64"],
                        help="float64 rows also report fastrnn's float64/float32 time")
    parser.add_argument("--input-grad", action="store_true",
                        help="forward+backward also computes the input gradient, on both "
                             "sides (default: neither, as for a first layer)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--plot", help="bar chart (PNG) of the forward+backward ratios with "
                                       "their goals (needs matplotlib)")
    args = parser.parse_args()

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
        import numba
        numba.set_num_threads(args.threads)   # fastrnn's threaded scans
    print(f"fastrnn {fr.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{platform.machine()}, torch threads {torch.get_num_threads()}")
    print(f"BLAS: {blas_description()}")
    print("forward+backward " + ("with" if args.input_grad else "without")
          + " the input gradient, on both sides")
    sgemm = sgemm_rate()  # float32, through the kernels' BLAS
    print(f"SGEMM rate (the kernels' BLAS, 2048^3): {sgemm:.0f} GFLOP/s")
    print(f"{'cell':5} {'shape':7} {'T,B,I,H':>18} | {'fwd ms':>8} {'torch':>8} {'ratio':>6} "
          f"| {'f+b ms':>8} {'torch':>8} {'ratio':>6} | {'goal':>20} verdict")
    rows = []
    float32_train = {}
    for dtype in args.dtypes:
        for cell in args.cells:
            for name in args.shapes:
                row = measure(torch, cell, name, np.dtype(dtype), args.repeats, args.input_grad)
                if dtype == "float32":
                    reference = sgemm
                    if name == "large":
                        # measured again beside the row it judges (a slow phase of a shared
                        # host would otherwise flatter the share); the higher rate counts
                        row["sgemm_gflops"] = sgemm_rate()
                        reference = max(sgemm, row["sgemm_gflops"])
                    row["goal"], row["verdict"] = verdict(cell, name, row, reference,
                                                          args.input_grad)
                    float32_train[(cell, name)] = row["train"]
                elif (cell, name) in float32_train:
                    row["goal"] = "f64/f32 <= 2"
                    row["f64_over_f32"] = row["train"] / float32_train[(cell, name)]
                    row["verdict"] = (f"{row['f64_over_f32']:.2f} "
                                      + ("PASS" if row["f64_over_f32"] <= 2 else "MISS"))
                rows.append(row)
                print(f"{cell:5} {name:7} {','.join(map(str, SHAPES[name])):>18} | "
                      f"{1e3 * row['fwd']:8.2f} {1e3 * row['torch_fwd']:8.2f} "
                      f"{row['fwd_ratio']:6.2f} | {1e3 * row['train']:8.2f} "
                      f"{1e3 * row['torch_train']:8.2f} {row['train_ratio']:6.2f} | "
                      f"{row.get('goal', ''):>20} {row.get('verdict', '')}"
                      + ("" if dtype == "float32" else "  (float64)"), flush=True)
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dict(date=time.strftime("%Y-%m-%d"), blas=blas_description(),
                           input_grad=args.input_grad,
                           sgemm_gflops=sgemm, rows=rows), handle, indent=1)


if __name__ == "__main__":
    main()
