"""Training curve of the char-LM tutorial: docs/img/char_lm_curve.png.

Reads the output of ``examples/char_lm.py`` that ``docs/scripts/run_examples.sh``
saved in ``docs/tutorials/output/char_lm.txt`` (one line per epoch: epoch, train
perplexity, held-out perplexity, tokens/s) and plots both perplexities. Run from
the repository root::

    python docs/scripts/plot_char_lm.py
"""

import pathlib
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DOCS = pathlib.Path(__file__).resolve().parents[1]
SOURCE = DOCS / "tutorials" / "output" / "char_lm.txt"
OUT = DOCS / "img" / "char_lm_curve.png"
ROW = re.compile(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+|nan)\s+(\d+)\s*$")


def main():
    rows = [ROW.match(line) for line in SOURCE.read_text().splitlines()]
    rows = [(int(m[1]), float(m[2]), float(m[3])) for m in rows if m]
    if not rows:
        raise SystemExit(f"no epoch lines in {SOURCE}")
    epochs, train, held_out = zip(*rows)
    best = min(range(len(rows)), key=lambda i: held_out[i])
    fig, ax = plt.subplots(figsize=(7, 3.8), constrained_layout=True)
    ax.plot(epochs, train, "o-", ms=3, label="training text (mean over the epoch)")
    ax.plot(epochs, held_out, "s-", ms=3, label="held-out text (last 10%, after the epoch)")
    ax.annotate(f"best held-out {held_out[best]:.2f} (epoch {epochs[best]})",
                (epochs[best], held_out[best]), xytext=(0, 25), textcoords="offset points",
                ha="center", fontsize=8, arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.set_yscale("log")
    ax.set_yticks([2, 3, 4, 5, 6, 8, 10], ["2", "3", "4", "5", "6", "8", "10"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity per character")
    ax.set_title("examples/char_lm.py on The Time Machine: LSTM 256, Adam 0.01, "
                 "batch 32 x 35 steps", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(OUT, dpi=120)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
