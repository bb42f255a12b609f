"""Draw the windows of TBPTT(k1, k2) as the engine plans them: docs/img/tbptt_windows.png.

The windows come from :meth:`fastrnn.training.TruncatedBPTT.plan` and the forward
chunks from its cut points, so the figure shows what the code does. Run from the
repository root (seconds, no kernel is compiled)::

    python docs/scripts/plot_tbptt.py
"""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import fastrnn as fr  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[1] / "img" / "tbptt_windows.png"


def draw(ax, steps, k1, k2):
    model = fr.LSTM(1, 1, seed=0)          # plan() needs an engine; nothing runs
    engine = fr.training.TruncatedBPTT(model, fr.losses.mse, k1=k1, k2=k2)
    windows = engine.plan(steps)
    cuts = engine._cuts(windows) + [steps]
    for row, (start, scored, end) in enumerate(windows):
        y = len(windows) - row
        ax.barh(y, end - start, left=start, height=0.55, color="#c6dbef",
                edgecolor="#6baed6", label="backward span [start, end)" if row == 0 else None)
        ax.barh(y, end - scored, left=scored, height=0.25, color="#08519c",
                label="outputs scored [scored, end)" if row == 0 else None)
        ax.text(steps + 0.4, y, f"({start}, {scored}, {end})", va="center", fontsize=8)
    for cut in sorted(set(cuts)):
        ax.axvline(cut, color="0.6", lw=0.8, ls=":")
    ax.barh(0, steps, left=0, height=0.55, color="#e5e5e5", edgecolor="0.5",
            label="forward, once per step (dotted: chunk cuts)")
    ax.set_yticks(range(len(windows) + 1),
                  ["forward"] + [f"window {i}" for i in range(len(windows))][::-1])
    ax.set_xlim(0, steps + 5)
    ax.set_title(f"TBPTT(k1={k1}, k2={k2}) over T={steps}: engine.plan({steps}) = "
                 "(start, scored, end)", fontsize=9)
    ax.set_xlabel("time step t")


def main():
    fig, axes = plt.subplots(2, 1, figsize=(8, 6.2), constrained_layout=True,
                             gridspec_kw={"height_ratios": [5, 4]})
    draw(axes[0], 22, 5, 10)
    draw(axes[1], 22, 6, 6)
    axes[0].legend(loc="upper left", fontsize=7, bbox_to_anchor=(0.0, -0.2), ncol=3,
                   frameon=False)
    axes[1].get_legend() and axes[1].get_legend().remove()
    fig.savefig(OUT, dpi=120)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
