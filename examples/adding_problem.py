"""The adding problem: a long-range dependency, full vs truncated BPTT, gradient flow.

Hochreiter & Schmidhuber's test of long memory (in the variant of Le, Jaitly &
Hinton, 2015): each input step is a pair (value, marker), values uniform in
[0, 1], markers 0 except at two steps, one in the first half of the sequence
and one in the second. After the last step the network must output the sum
of the two marked values. Predicting the mean, 1.0, scores an MSE of
Var(u1 + u2) = 2/12 = 0.167; beating it clearly needs the first marked value
to be carried over up to ``T`` steps.

We train ``Sequential([LSTM(2, H), Linear(H, 1)])`` with
:class:`fastrnn.training.TruncatedBPTT` twice:

1. **full BPTT** (``k1 = k2 = T``): one window, the loss at the last step is
   backpropagated through every step back to ``t = 0``;
2. **truncated BPTT** (``k1 = k2 = k`` small): the sequence is cut into windows
   of ``k`` steps; the gradient of the final loss stops ``k`` steps back, so
   no gradient ever connects the loss to the first marked value. It can only
   learn "add a marked value to the memory and keep it" from the sequences
   whose *second* marker falls inside the last ``k`` steps; because the same
   weights act at every step, that mechanism may then carry the first value
   too, by luck rather than by gradient. In our runs (T=200, k=20) it got
   there later and ended about 40 times worse than full BPTT (MSE ~0.02 vs
   ~0.0005); with other seeds, or with markers never near the end, it may
   stay at the baseline.

Only the last step of the sequence is scored. The engine calls the loss on
every window, so the targets are NaN ("not scored") everywhere except at the
last step, and :func:`masked_mse` returns a zero loss and gradient on windows
without any target. The optimizer steps only after the window that scored.

Gradients are clipped twice: per step inside the backward scan
(``error_clip``: every ``dL/dh_t`` is scaled to norm at most ``error_clip``
before it flows on) and globally before each step (``clip_grad_norm``).
``record_error_norms=True`` records ``||dL/dh_t||`` at every step, which shows
how the error signal vanishes (or explodes) on its way back through time.

Run it from the repository root::

    python examples/adding_problem.py          # T = 200, about 2-3 minutes
    python examples/adding_problem.py --tiny   # a few seconds (CI)
"""

import argparse
import sys
import time

import numpy as np

import fastrnn as fr
from fastrnn.training import TruncatedBPTT, clip_grad_norm
from fastrnn.training.optimizers import Adam

TRIVIAL_MSE = 2 / 12     # predicting 1.0 for u1 + u2 with u1, u2 ~ U(0, 1)


# ----------------------------------------------------------------------- data
def adding_batch(steps, batch, rng):
    """Inputs (T, B, 2) and targets (T, B, 1): NaN except the sum at the last step."""
    x = np.zeros((steps, batch, 2), np.float32)
    x[:, :, 0] = rng.random((steps, batch))
    columns = np.arange(batch)
    first = rng.integers(0, steps // 2, batch)           # a marker in the first half
    second = rng.integers(steps // 2, steps, batch)      # and one in the second
    x[first, columns, 1] = 1.0
    x[second, columns, 1] = 1.0
    targets = np.full((steps, batch, 1), np.nan, np.float32)
    targets[-1, :, 0] = x[first, columns, 0] + x[second, columns, 0]
    return x, targets


def masked_mse(y, targets, reduction="mean"):
    """Squared error over the finite targets only; ``(0.0, zeros)`` when there are none.

    This is the ``loss_fn`` of the engine: ``(y_window, targets_window) -> (loss, dy)``.
    ``reduction="sum"`` gives every sequence its own loss (and gradient), not
    1/B of it.
    """
    scored = np.isfinite(targets)
    dy = np.zeros_like(y)
    count = int(scored.sum())
    if count == 0:
        return 0.0, dy
    diff = y[scored] - targets[scored]
    scale = count if reduction == "mean" else 1
    dy[scored] = 2.0 * diff / scale
    return float(np.sum(np.square(diff, dtype=np.float64)) / scale), dy


def summed_mse(y, targets):
    return masked_mse(y, targets, reduction="sum")


def test_mse(model, x, targets):
    """MSE of the prediction at the last step (inference, no tape)."""
    y, _ = model(x)
    return float(np.mean((y[-1] - targets[-1]) ** 2))


# ------------------------------------------------------------------- training
def train(model, steps, k, args, rng, label):
    """Train with TBPTT(k, k); ``k = steps`` is full BPTT. Returns the loss curve."""
    # error_clip bounds each sequence's ||dL/dh_t||; with the batch-mean loss every
    # sequence's gradient is 1/B of that of its own loss, so the bound scales the same way
    engine = TruncatedBPTT(model, masked_mse, k1=k, k2=k,
                           error_clip=args.error_clip / args.batch)
    last_window = len(engine.plan(steps)) - 1
    optimizer = Adam(model, lr=args.lr)
    losses = []

    def on_window(index, loss):
        # the engine zeroed the gradients before this window's backward and left
        # this window's in model.flat_grads; only the last window scored anything
        if index == last_window:
            clip_grad_norm(model, args.clip)
            optimizer.step()
            losses.append(loss)

    print(f"\n{label}: TBPTT(k1={k}, k2={k}) over T={steps}, "
          f"{len(engine.plan(steps))} window(s) per sequence")
    print(f"  iteration  train MSE (mean of the last {args.report})")
    started = time.perf_counter()
    for iteration in range(1, args.iterations + 1):
        x, targets = adding_batch(steps, args.batch, rng)
        engine.run(x, targets, None, on_window)        # hx None: every sequence from zeros
        if iteration % args.report == 0 or iteration == args.iterations:
            print(f"  {iteration:9d}  {np.mean(losses[-args.report:]):.4f}", flush=True)
    print(f"  ({time.perf_counter() - started:.1f} s)")
    return losses


# -------------------------------------------------------------- gradient flow
def error_profile(model, x, targets, error_clip=None):
    """Mean over the batch of ``||dL_b/dh_t||`` (``L_b``: sequence b's own loss) at every
    step, for one full-BPTT backward."""
    steps = x.shape[0]
    engine = TruncatedBPTT(model, summed_mse, k1=steps, error_clip=error_clip,
                           record_error_norms=True)
    engine.run(x, targets)                 # no on_window: nothing is updated
    model.zero_grad()
    norms = engine.error_norms[0]          # first recurrent layer: (num_layers, T, B)
    return norms[-1].mean(axis=1)          # top layer, averaged over the batch


def print_profiles(profiles, steps):
    """One row per model: ``||dL/dh_t||`` at a few steps, from the last back to the first."""
    picks = sorted({steps - 1, 3 * steps // 4, steps // 2, steps // 4, steps // 10, 0},
                   reverse=True)
    print(f"  {'t =':<34}" + "".join(f"{t:>10d}" for t in picks))
    for name, profile in profiles:
        print(f"  {name:<34}" + "".join(f"{profile[t]:10.2e}" for t in picks))


# ----------------------------------------------------------------------- main
def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="sequence length T")
    parser.add_argument("--truncation", type=int, default=20,
                        help="k of the truncated run (k1 = k2 = k)")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3000,
                        help="minibatches (optimizer steps) per run")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--clip", type=float, default=1.0, help="global gradient norm")
    parser.add_argument("--error-clip", type=float, default=1.0,
                        help="per-step clip of ||dL/dh_t|| inside the backward scan")
    parser.add_argument("--report", type=int, default=300, help="print every N iterations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true",
                        help="a few seconds at tiny sizes (a smoke test)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.truncation, args.hidden, args.batch = 20, 5, 8, 8
        args.iterations, args.report = 10, 5
    return args


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    steps = args.steps
    test_x, test_y = adding_batch(steps, 1000, rng)
    print(f"adding problem: T={steps}, batch {args.batch}, {args.iterations} iterations per "
          f"run; trivial baseline (always predict 1.0): test MSE "
          f"{test_mse_of_constant(test_y):.4f} (expected {TRIVIAL_MSE:.4f})")

    def fresh_model(cell=fr.LSTM):
        return fr.Sequential([cell(2, args.hidden, seed=args.seed),
                              fr.Linear(args.hidden, 1, seed=args.seed + 1)])

    # --- 1. how the error signal travels back through time, before any training
    probe_x, probe_y = test_x[:, :64], test_y[:, :64]
    rnn_big = fresh_model(fr.RNN)
    # a tanh RNN whose recurrent matrix has spectral norm 3: expansive, its errors grow
    weight = rnn_big.params["0.weight_hh_l0"]
    weight *= 3.0 / np.linalg.norm(weight, 2)
    print("\ngradient flow at initialisation: ||dL/dh_t|| of one sequence's loss, mean over 64:")
    print_profiles([("RNN, default init", error_profile(fresh_model(fr.RNN), probe_x, probe_y)),
                    ("RNN, sigma(W_hh) = 3", error_profile(rnn_big, probe_x, probe_y)),
                    ("RNN, sigma(W_hh) = 3, error_clip", error_profile(
                        rnn_big, probe_x, probe_y, error_clip=args.error_clip)),
                    ("LSTM, default init", error_profile(fresh_model(), probe_x, probe_y))],
                   steps)

    # --- 2. full BPTT, then 3. truncated BPTT, same model, data budget and clipping
    results = {}
    for label, k in (("full BPTT", steps), ("truncated BPTT", args.truncation)):
        model = fresh_model()
        train(model, steps, k, args, rng, label)
        results[label] = (model, test_mse(model, test_x, test_y))

    # --- 4. where the trained models' error signal reaches
    print("\ngradient flow after training: ||dL/dh_t|| of one sequence's loss, mean over 64:")
    print_profiles([(f"LSTM trained with {label}", error_profile(model, probe_x, probe_y))
                    for label, (model, _) in results.items()], steps)

    print(f"\ntest MSE (1000 sequences of T={steps}):")
    print(f"  trivial baseline (predict 1.0)    {test_mse_of_constant(test_y):.4f}")
    for label, (_, mse) in results.items():
        k = steps if label == "full BPTT" else args.truncation
        print(f"  {label + f' (k={k})':<33} {mse:.4f}")
    return 0


def test_mse_of_constant(targets, value=1.0):
    return float(np.mean((targets[-1] - value) ** 2))


if __name__ == "__main__":
    sys.exit(main())
