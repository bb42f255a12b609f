"""Time-series forecasting with a GRU: the noisy Mackey-Glass series.

The Mackey-Glass delay differential equation

    dx/dt = beta * x(t - tau) / (1 + x(t - tau)**10) - gamma * x(t),   tau = 17

is a classic chaotic benchmark for sequence models: its future depends on the
value ``tau`` time units back, so a model must remember a window of the past.
We integrate it in code, add observation noise, and learn to predict the value
``--horizon`` steps ahead from the last ``--window`` observations:

* ``fastrnn.data.sliding_windows`` cuts the series into (past, future) pairs,
  time-major: inputs (window, M, 1), targets (horizon, M, 1);
* the model is ``Sequential([GRU(1, H), Linear(H, 1)])``; its output at the
  *last* step of the window is the forecast, so the loss gradient ``dy`` is
  zero at every other step;
* mean squared error and Adam; the series is split in time (train on the
  past, test on the future) and scaled with the training part's statistics.

The score is the test RMSE next to the naive forecast "the value will stay
what it is now" (repeat the last observation), which a useful model must beat.

Run it from the repository root::

    python examples/forecasting.py          # about a minute
    python examples/forecasting.py --tiny   # a few seconds (CI)
"""

import argparse
import sys
import time

import numpy as np

import fastrnn as fr
from fastrnn.data import sliding_windows
from fastrnn.losses import mse
from fastrnn.training import clip_grad_norm
from fastrnn.training.optimizers import Adam


def mackey_glass(length, tau=17.0, beta=0.2, gamma=0.1, power=10, dt=0.1, sample_every=1.0,
                 warmup=500, rng=None):
    """``length`` samples of the Mackey-Glass series, one every ``sample_every`` time units.

    Euler integration with step ``dt`` from a random constant history; the
    first ``warmup`` samples (the transient) are dropped.
    """
    rng = np.random.default_rng(rng)
    delay = int(round(tau / dt))
    stride = int(round(sample_every / dt))
    total = (length + warmup) * stride
    x = np.empty(total + delay)
    x[:delay] = 1.2 + 0.1 * rng.standard_normal()
    for t in range(delay, total + delay):
        lagged = x[t - delay]
        previous = x[t - 1]
        x[t] = previous + dt * (beta * lagged / (1.0 + lagged ** power) - gamma * previous)
    samples = x[delay::stride]
    return samples[warmup:warmup + length]


def make_windows(series, window, horizon):
    """Inputs (window, M, 1) and the value ``horizon`` steps after each window, (M, 1)."""
    inputs, targets = sliding_windows(series, window, horizon)
    return inputs, targets[-1]


def forecast(model, inputs, batch=1024):
    """The model's forecasts (M, 1): the output at the last step of each window."""
    out = [model(inputs[:, start:start + batch])[0][-1]
           for start in range(0, inputs.shape[1], batch)]
    return np.concatenate(out)


def rmse(prediction, target):
    return float(np.sqrt(np.mean((prediction - target) ** 2)))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=3000, help="samples in the series")
    parser.add_argument("--noise", type=float, default=0.02,
                        help="observation noise (std, in the series' units)")
    parser.add_argument("--window", type=int, default=40, help="past steps the model sees")
    parser.add_argument("--horizon", type=int, default=5, help="how many steps ahead")
    parser.add_argument("--test-fraction", type=float, default=0.25)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--clip", type=float, default=1.0, help="global gradient norm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true",
                        help="a few seconds at tiny sizes (a smoke test)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.length, args.window, args.hidden, args.epochs = 400, 12, 8, 2
    return args


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)

    # --- the data: a noisy chaotic series, split in time, scaled by the past's statistics
    clean = mackey_glass(args.length, rng=rng)
    series = clean + args.noise * rng.standard_normal(args.length)
    split = int(args.length * (1 - args.test_fraction))
    mean, std = series[:split].mean(), series[:split].std()
    scaled = ((series - mean) / std).astype(np.float32)
    train_x, train_y = make_windows(scaled[:split], args.window, args.horizon)
    # test windows start after the training part (their inputs may reach back into it)
    test_x, test_y = make_windows(scaled[split - args.window:], args.window, args.horizon)
    print(f"series: Mackey-Glass (tau=17), {args.length} samples, noise std {args.noise}; "
          f"predict {args.horizon} step(s) ahead from {args.window} past values")
    print(f"windows: {train_x.shape[1]} to train on, {test_x.shape[1]} to test on "
          f"(inputs are time-major, {train_x.shape})")

    # --- the model: a GRU reads the window, a Linear layer reads its last output
    model = fr.Sequential([fr.GRU(1, args.hidden, seed=args.seed),
                           fr.Linear(args.hidden, 1, seed=args.seed + 1)])
    optimizer = Adam(model, lr=args.lr)
    print(f"model: GRU(1, {args.hidden}) -> Linear({args.hidden}, 1) on the last step; "
          f"{model.flat_params.size:,} parameters; Adam lr {args.lr}")

    # the naive forecast: the last value of each window, repeated
    naive = rmse(test_x[-1], test_y) * std

    print("epoch  train MSE  test RMSE")
    started = time.perf_counter()
    count = train_x.shape[1]
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(count)
        total = 0.0
        for start in range(0, count, args.batch):
            chosen = order[start:start + args.batch]
            model.zero_grad()
            y, _, tape = model.forward(train_x[:, chosen])        # (window, B, 1)
            loss, dprediction = mse(y[-1], train_y[chosen])      # score the last step only
            dy = np.zeros_like(y)
            dy[-1] = dprediction                                 # no gradient elsewhere
            model.backward(tape, dy)
            clip_grad_norm(model, args.clip)
            optimizer.step()
            total += loss * len(chosen)
        test = rmse(forecast(model, test_x), test_y) * std
        print(f"{epoch:5d}  {total / count:9.5f}  {test:9.5f}", flush=True)
    seconds = time.perf_counter() - started

    test = rmse(forecast(model, test_x), test_y) * std
    print(f"trained {args.epochs} epochs in {seconds:.1f} s")
    print(f"test RMSE (series units): GRU {test:.4f}, naive 'repeat the last value' "
          f"{naive:.4f}, noise floor {args.noise:.4f}; GRU/naive = {test / naive:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
