"""Peak memory of truncated BPTT against sequence length: O(k1 + k2), not O(T).

Trains one window schedule over sequences of growing length with
:class:`fastrnn.training.TruncatedBPTT` and reports the peak of the memory
NumPy allocates (``tracemalloc`` sees every NumPy buffer) beyond the inputs,
for TBPTT(k1, k2) and for full BPTT (k1 = k2 = T). The idle blocks of fastrnn's
memory pool (:mod:`fastrnn._memory`) are freed between the warm-up run and the
measured one: the measured run would otherwise reuse blocks allocated before
tracing started, and its peak would leave out the tapes it holds.

Usage::

    python benchmarks/tbptt_memory.py [--hidden 128] [--batch 16] [--json out.json]
"""

import argparse
import json
import tracemalloc

import numpy as np

import fastrnn as fr
from fastrnn import _memory


def peak_bytes(steps, k1, k2, hidden, batch, features=8):
    model = fr.Sequential([fr.LSTM(features, hidden, seed=0), fr.Linear(hidden, 1, seed=1)])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, features)).astype(np.float32)
    targets = rng.standard_normal((steps, batch, 1)).astype(np.float32)
    engine = fr.training.TruncatedBPTT(model, fr.losses.mse, k1, k2)
    engine.run(x[:k2 + k1], targets[:k2 + k1])   # compile and fill the scratch buffers
    _memory.release()   # blocks recycled from the warm-up would be invisible to tracemalloc
    tracemalloc.start()
    tracemalloc.reset_peak()
    engine.run(x, targets)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, engine.peak_tape_steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    rows = []
    print(f"LSTM hidden {args.hidden}, batch {args.batch}, float32: peak MiB allocated by one run")
    print(f"{'T':>6} {'TBPTT(50,50)':>13} {'TBPTT(50,200)':>14} {'full BPTT':>10}")
    for steps in (500, 1000, 2000, 4000):
        row = dict(steps=steps)
        for name, k1, k2 in (("k50_50", 50, 50), ("k50_200", 50, 200), ("full", steps, steps)):
            peak, tape_steps = peak_bytes(steps, k1, k2, args.hidden, args.batch)
            row[name] = dict(peak_mib=peak / 2**20, tape_steps=tape_steps)
        rows.append(row)
        print(f"{steps:>6} {row['k50_50']['peak_mib']:>13.1f} {row['k50_200']['peak_mib']:>14.1f} "
              f"{row['full']['peak_mib']:>10.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dict(hidden=args.hidden, batch=args.batch, rows=rows), handle, indent=2)


if __name__ == "__main__":
    main()
