"""Per-step error norms ||dL/dh_t|| with and without ``error_clip``: docs/img/error_norms.png.

A tanh RNN (64 units, float64) reads 100 steps of Gaussian input; the loss is
a random unit-norm gradient on the last output only, so ``dL/dh_t`` shows how
the error signal travels back through time. The norms are the library's own
``error_norms`` (recorded by the backward scan, before clipping at that step).
Three recurrent matrices: the default initialisation, and the same matrix
rescaled to spectral norm 3 (expansive) with and without per-step clipping.
Run from the repository root (seconds, plus compiling the RNN kernels once)::

    python docs/scripts/plot_error_norms.py
"""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastrnn as fr  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "img" / "error_norms.png"
STEPS, BATCH, INPUT, HIDDEN = 100, 32, 4, 64


def profile(sigma=None, error_clip=None):
    """Mean over the batch of ||dL/dh_t||, t = 0..T-1, and sigma(W_hh)."""
    rnn = fr.RNN(INPUT, HIDDEN, dtype=np.float64, seed=0)
    weight = rnn.params["weight_hh_l0"]
    if sigma is not None:
        weight *= sigma / np.linalg.norm(weight, 2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((STEPS, BATCH, INPUT))
    y, _, tape = rnn.forward(x)
    dy = np.zeros_like(y)
    last = rng.standard_normal((BATCH, HIDDEN))
    dy[-1] = last / np.linalg.norm(last, axis=1, keepdims=True)
    norms = np.zeros((1, STEPS, BATCH))
    rnn.backward(tape, dy, error_clip=error_clip, error_norms=norms)
    return norms[0].mean(axis=1), float(np.linalg.norm(weight, 2))


def main():
    runs = [(profile(), "default init", "C0", "-"),
            (profile(sigma=3.0), "W_hh rescaled to sigma = 3", "C3", "-"),
            (profile(sigma=3.0, error_clip=1.0), "sigma = 3, error_clip = 1", "C2", "--")]
    fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
    for (norms, sigma), label, color, style in runs:
        ax.semilogy(np.arange(STEPS), norms, style, color=color,
                    label=f"{label} (sigma(W_hh) = {sigma:.2f})")
        print(f"{label:28s} sigma {sigma:.3f}: ||dL/dh_t|| at t = 99, 90, 50, 0: "
              + ", ".join(f"{norms[t]:.3g}" for t in (99, 90, 50, 0)))
    ax.set_xlabel("time step t (the loss is at t = 99)")
    ax.set_ylabel("mean over 32 sequences of ||dL/dh_t||")
    ax.set_title("Error flow back through a tanh RNN (H = 64, float64), "
                 "recorded with backward(error_norms=...)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.savefig(OUT, dpi=120)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
