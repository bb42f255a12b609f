"""fastrnn against torch, side by side in one process, on the CPU.

Times forward (inference) and forward+backward (training) of one-layer RNN,
LSTM and GRU layers at fixed shapes, float32, and prints the ratio
``fastrnn time / torch time`` (below 1 means fastrnn is faster).

Usage (speed on a user's default machine: leave BLAS unpinned)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_torch.py
    python benchmarks/compare_torch.py --threads 1 --repeats 20 --json out.json
"""

import argparse
import json
import platform
import time

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (load the kernels' BLAS now, so --threads limits it)

import fastrnn as fr
try:  # imported by asv as part of the benchmarks package, or run as a script
    from ._common import CELLS, SHAPES, best_time, blas_description, fastrnn_runs, torch_runs
except ImportError:
    from _common import CELLS, SHAPES, best_time, blas_description, fastrnn_runs, torch_runs

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="limit torch, numba and BLAS to this many threads")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--cells", nargs="*", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    print(f"fastrnn {fr.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"{platform.machine()}, torch threads {torch.get_num_threads()}")
    print(f"BLAS: {blas_description()}")
    print(f"{'cell':5} {'shape':7} {'T,B,I,H':>18} | {'fwd ms':>8} {'torch':>8} {'ratio':>6} "
          f"| {'f+b ms':>8} {'torch':>8} {'ratio':>6}")
    rows = []
    for cell in args.cells:
        for name in args.shapes:
            shape = SHAPES[name]
            layer, fwd, train = fastrnn_runs(cell, shape, np.float32)
            t_fwd, t_train = torch_runs(torch, layer, shape)
            times = {}
            for label, function in (("fwd", fwd), ("torch_fwd", t_fwd), ("train", train),
                                    ("torch_train", t_train)):
                times[label] = best_time(function, args.repeats)
            row = dict(cell=cell, shape=name, dims=shape, **times,
                       fwd_ratio=times["fwd"] / times["torch_fwd"],
                       train_ratio=times["train"] / times["torch_train"])
            rows.append(row)
            print(f"{cell:5} {name:7} {','.join(map(str, shape)):>18} | "
                  f"{1e3 * times['fwd']:8.2f} {1e3 * times['torch_fwd']:8.2f} "
                  f"{row['fwd_ratio']:6.2f} | {1e3 * times['train']:8.2f} "
                  f"{1e3 * times['torch_train']:8.2f} {row['train_ratio']:6.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dict(date=time.strftime("%Y-%m-%d"), blas=blas_description(),
                           rows=rows), handle, indent=1)


if __name__ == "__main__":
    main()
