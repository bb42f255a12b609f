"""The char-level LM on *The Time Machine*: fastrnn against a d2l-style PyTorch loop.

Both frameworks train d2l's model with d2l's settings (LSTM, 256 hidden units,
one layer, batch 32, 35 steps, random sampling with the state reset per batch,
SGD with learning rate 1, global-norm clipping at 1, float32) on the same
corpus, vocabulary (:meth:`fastrnn.data.Vocab.from_text`), initial weights
(fastrnn's seeded initialisation copied into torch, ``--init same``) and
minibatches (:func:`fastrnn.data.random_batches` driven by one seeded
``numpy.random.Generator``: epoch ``k`` is the same list of ``(35, 32)`` int64
batches on both sides), in one process, on the same threads.

* fastrnn: :class:`fastrnn.charlm.Trainer`, one-hot input given as token ids,
  one :class:`~fastrnn.training.TruncatedBPTT` window per batch.
* torch: d2l's ``train_epoch_ch8``: ``nn.LSTM(V, 256)`` fed
  ``F.one_hot(X, V).float()``, ``nn.Linear(256, V)``, ``nn.CrossEntropyLoss``,
  ``clip_grad_norm_(params, 1)``, ``optim.SGD(lr=1)``.

Protocol: compile/warm up each side on one batch (untimed, weights restored),
then alternate one epoch of fastrnn and one of torch until each has trained for
``--seconds`` (training seconds: the sum of the per-batch step times, batch
generation excluded on both sides), so machine noise hits both alike. Per epoch
it records the training perplexity (exp of the mean cross-entropy over the
epoch's tokens), the cumulative training seconds and tokens/s; it reports both
curves, the tokens/s ratio, the perplexity each reached within the same budget
and, at equal epochs, how far the two curves are apart (the math is the same,
so they should agree closely in the first epochs and drift apart only slowly,
float32 rounding being amplified by training).

Usage (speed numbers as on a user's machine: these machines pin an older
OpenBLAS kernel through the environment, so unset it)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_charlm.py
    python benchmarks/compare_charlm.py --seconds 10 --json out.json --plot out.png
    python benchmarks/compare_charlm.py --text path/to/timemachine.txt --threads 1

The text defaults to ``../shared/data/timemachine.txt`` relative to the
repository root; the package itself never needs it.
"""

import argparse
import copy
import datetime
import json
import math
import os
import pathlib
import platform
import re
import sys
import time

import numpy as np

import fastrnn as fr
try:  # imported by asv as part of the benchmarks package, or run as a script
    from ._common import blas_description, load_kernels_blas
except ImportError:
    from _common import blas_description, load_kernels_blas
from fastrnn.charlm import Config, Trainer
from fastrnn.data import random_batches

load_kernels_blas()   # now, so that --threads limits it

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_TEXT = ROOT.parent / "shared" / "data" / "timemachine.txt"
FRAMEWORKS = ("fastrnn", "torch")


# ------------------------------------------------------------------- data
def preprocess(text, how):
    """The training text.

    ``d2l``: d2l's ``read_time_machine`` + ``load_corpus_time_machine``: each
    line becomes ``re.sub('[^A-Za-z]+', ' ', line).strip().lower()`` and the
    lines are concatenated as d2l's corpus does (no separator; 171,438
    characters, 27 symbols for the shared text). ``letters``: the same
    substitution on the whole text (newer d2l: line breaks become spaces).
    ``raw``: the text as it is.
    """
    if how == "d2l":
        return "".join(re.sub("[^A-Za-z]+", " ", line).strip().lower()
                       for line in text.splitlines())
    if how == "letters":
        return re.sub("[^A-Za-z]+", " ", text).strip().lower()
    return text


class EpochData:
    """Epoch ``k``'s batches, the same for every framework.

    One seeded generator is drawn from epoch after epoch (as
    :class:`~fastrnn.charlm.Trainer` does); the generator's state at the start
    of each epoch is kept, so any epoch can be rebuilt bit for bit without
    holding every epoch's batches in memory.
    """

    def __init__(self, corpus, batch, steps, seed):
        self.corpus, self.batch, self.steps = corpus, batch, steps
        self.rng = np.random.default_rng(seed)
        self.states = [self.rng.bit_generator.state]

    def state(self, epoch):
        while len(self.states) <= epoch:
            random_batches(self.corpus, self.batch, self.steps, self.rng)
            self.states.append(self.rng.bit_generator.state)
        return self.states[epoch]

    def batches(self, epoch):
        rng = np.random.default_rng()
        rng.bit_generator.state = self.state(epoch)
        return random_batches(self.corpus, self.batch, self.steps, rng)


# ---------------------------------------------------------------- fastrnn
class FastrnnSide:
    """fastrnn's own training loop: :class:`fastrnn.charlm.Trainer`, one epoch a call."""

    name = "fastrnn"

    def __init__(self, text, config, data):
        self.trainer = Trainer(text, config, progress=None)
        self.data = data

    def warm_up(self, inputs, targets):
        """Compile every kernel of a training step on a real batch, then undo the step."""
        trainer = self.trainer
        model, optimizer = trainer.lm.model, trainer.optimizer
        params = model.flat_params.copy()
        state = copy.deepcopy(optimizer.state_dict())
        trainer._warm_up()
        trainer.engine.run(inputs, targets, None, trainer._update)
        model.flat_params[...] = params
        optimizer.load_state_dict(state)
        model.zero_grad()

    def loss(self, inputs, targets):
        logits, _ = self.trainer.lm.model(inputs)
        return self.trainer.lm.loss(logits, targets)[0]

    def epoch(self, index):
        trainer = self.trainer
        assert trainer.epoch == index and trainer.batch_index == 0
        # Trainer's generator already follows the shared sequence; set it anyway.
        trainer.rng.bit_generator.state = self.data.state(index)
        trainer.train(epochs=index + 1)
        entry = trainer.history[-1]
        tokens = round(entry["tokens_per_s"] * entry["seconds"])
        return entry["perplexity"], entry["seconds"], tokens


# ------------------------------------------------------------------ torch
def torch_side(torch, vocab_size, config, data, fastrnn_model, init):
    nn, F = torch.nn, torch.nn.functional

    class RNNModel(nn.Module):
        """d2l's ``RNNModel``: one-hot inputs, a recurrent layer, a Linear read-out."""

        def __init__(self):
            super().__init__()
            self.vocab_size = vocab_size
            self.rnn = getattr(nn, config.cell.upper())(vocab_size, config.hidden,
                                                        config.layers)
            self.linear = nn.Linear(config.hidden, vocab_size)

        def forward(self, inputs, state=None):
            X = F.one_hot(inputs, self.vocab_size).float()  # time-major already
            Y, state = self.rnn(X, state)
            return self.linear(Y.reshape(-1, Y.shape[-1])), state

    class TorchSide:
        name = "torch"

        def __init__(self):
            torch.manual_seed(config.seed)
            self.net = RNNModel()
            if init == "same":
                names = {"0": "rnn", "1": "linear"}
                state = {f"{names[k.split('.', 1)[0]]}.{k.split('.', 1)[1]}":
                         torch.from_numpy(np.array(v)) for k, v in
                         fastrnn_model.state_dict().items()}
                self.net.load_state_dict(state)
            self.loss_fn = nn.CrossEntropyLoss()
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.lr)
            self.data = data

        def step(self, X, Y):
            y_hat, _ = self.net(X)  # random sampling: state starts at zeros each batch
            loss = self.loss_fn(y_hat, Y.reshape(-1))
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), config.clip)
            self.optimizer.step()
            return loss.item()

        def warm_up(self, inputs, targets):
            saved = copy.deepcopy(self.net.state_dict())
            self.step(torch.from_numpy(inputs), torch.from_numpy(targets))
            self.net.load_state_dict(saved)
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=config.lr)

        def loss(self, inputs, targets):
            with torch.no_grad():
                y_hat, _ = self.net(torch.from_numpy(inputs))
                return self.loss_fn(y_hat, torch.from_numpy(targets).reshape(-1)).item()

        def epoch(self, index):
            batches = [(torch.from_numpy(X), torch.from_numpy(Y))
                       for X, Y in self.data.batches(index)]
            total, tokens, seconds = 0.0, 0, 0.0
            self.net.train()
            for X, Y in batches:
                tic = time.perf_counter()
                loss = self.step(X, Y)
                seconds += time.perf_counter() - tic
                total += loss * Y.numel()
                tokens += Y.numel()
            return math.exp(total / tokens), seconds, tokens

    return TorchSide()


# ---------------------------------------------------------------- machine
def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(torch, threads):
    import numba
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = None
    return dict(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        platform=platform.platform(), machine=platform.machine(), cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        usable_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        python=platform.python_version(), fastrnn=fr.__version__, numpy=np.__version__,
        numba=numba.__version__, torch=torch.__version__, threads=threads,
        torch_threads=torch.get_num_threads(), numba_threads=numba.get_num_threads(),
        numba_threading_layer=layer, blas=blas_description(),
        OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE"),
        OPENBLAS_L2_SIZE=os.environ.get("OPENBLAS_L2_SIZE"),
        openblas_coretype_set="OPENBLAS_CORETYPE" in os.environ)


# ---------------------------------------------------------------- protocol
def run(sides, seconds, max_epochs, log):
    """Alternate one epoch per side until each has trained ``seconds`` (or ``max_epochs``)."""
    curves = {side.name: [] for side in sides}
    used = dict.fromkeys(curves, 0.0)

    def active(side):
        done = len(curves[side.name])
        return used[side.name] < seconds and (max_epochs is None or done < max_epochs)

    while any(active(side) for side in sides):
        for side in sides:
            if not active(side):
                continue
            index = len(curves[side.name])
            tic = time.perf_counter()
            perplexity, spent, tokens = side.epoch(index)
            wall = time.perf_counter() - tic
            used[side.name] += spent
            curves[side.name].append(dict(
                epoch=index + 1, perplexity=perplexity, seconds=spent,
                cumulative_seconds=used[side.name], tokens=tokens,
                tokens_per_s=tokens / spent, wall_seconds=wall))
            log(f"  {side.name:7} epoch {index + 1:3d}  perplexity {perplexity:8.3f}  "
                f"{spent:6.2f} s  {tokens / spent / 1e3:7.1f}k tokens/s  "
                f"(total {used[side.name]:7.1f} s)")
    return curves


def within(curve, seconds):
    """The last epoch that ended within ``seconds`` of training, or None."""
    inside = [e for e in curve if e["cumulative_seconds"] <= seconds * (1 + 1e-9)]
    return inside[-1] if inside else None


def summarize(curves, seconds):
    summary = {}
    for name, curve in curves.items():
        tokens = sum(e["tokens"] for e in curve)
        spent = sum(e["seconds"] for e in curve)
        last = within(curve, seconds)
        summary[name] = dict(
            epochs=len(curve), seconds=spent, tokens=tokens,
            tokens_per_s=tokens / spent if spent else None,
            median_epoch_tokens_per_s=float(np.median([e["tokens_per_s"] for e in curve]))
            if curve else None,
            final_perplexity=curve[-1]["perplexity"] if curve else None,
            within_budget=last)
    f, t = summary["fastrnn"], summary["torch"]
    summary["tokens_per_s_ratio"] = (f["tokens_per_s"] / t["tokens_per_s"]
                                     if f["tokens_per_s"] and t["tokens_per_s"] else None)
    both = min(len(curves["fastrnn"]), len(curves["torch"]))
    summary["equal_epochs"] = [
        dict(epoch=k + 1, fastrnn=curves["fastrnn"][k]["perplexity"],
             torch=curves["torch"][k]["perplexity"],
             relative_difference=curves["fastrnn"][k]["perplexity"]
             / curves["torch"][k]["perplexity"] - 1) for k in range(both)]
    return summary


def print_report(curves, summary, seconds, out=sys.stdout):
    def p(line=""):
        print(line, file=out)

    f_curve, t_curve = curves["fastrnn"], curves["torch"]
    p()
    p(f"{'':5} | {'fastrnn':^30} | {'torch':^30} |")
    p(f"{'epoch':>5} | {'perplexity':>10} {'cum s':>8} {'tok/s':>10} | "
      f"{'perplexity':>10} {'cum s':>8} {'tok/s':>10} | {'ppl f/t-1':>9}")
    for k in range(max(len(f_curve), len(t_curve))):
        cells = []
        for curve in (f_curve, t_curve):
            if k < len(curve):
                e = curve[k]
                cells.append(f"{e['perplexity']:10.3f} {e['cumulative_seconds']:8.1f} "
                             f"{e['tokens_per_s']:10.0f}")
            else:
                cells.append(" " * 30)
        diff = (f"{f_curve[k]['perplexity'] / t_curve[k]['perplexity'] - 1:+9.2e}"
                if k < min(len(f_curve), len(t_curve)) else "")
        p(f"{k + 1:5d} | {cells[0]} | {cells[1]} | {diff}")
    p()
    for name in FRAMEWORKS:
        s = summary[name]
        last = s["within_budget"]
        reached = (f"perplexity {last['perplexity']:.3f} after epoch {last['epoch']} "
                   f"({last['cumulative_seconds']:.1f} s)" if last else "no epoch finished")
        p(f"{name:7}: {s['epochs']} epochs in {s['seconds']:.1f} s, "
          f"{s['tokens_per_s']:.0f} tokens/s; within {seconds:g} s: {reached}")
    ratio = summary["tokens_per_s_ratio"]
    if ratio:
        p(f"tokens/s fastrnn / torch: {ratio:.2f} ({'fastrnn' if ratio > 1 else 'torch'} "
          f"faster)")
    shared = summary["equal_epochs"]
    if shared:
        first = max(abs(e["relative_difference"]) for e in shared[:5])
        every = max(abs(e["relative_difference"]) for e in shared)
        p(f"equal epochs: largest |perplexity fastrnn / torch - 1| over the first "
          f"{min(5, len(shared))} epochs: {first:.2e}; over all {len(shared)} that both "
          f"finished: {every:.2e}")


def plot(curves, seconds, path):
    try:
        import matplotlib
    except ImportError:
        print(f"--plot {path}: matplotlib is not installed; skipped", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot([e["cumulative_seconds"] for e in curve], [e["perplexity"] for e in curve],
                marker=".", label=name)
    ax.axvline(seconds, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("training seconds")
    ax.set_ylabel("training perplexity")
    ax.set_yscale("log")
    ax.set_title("char LM on The Time Machine (LSTM 256, d2l settings)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default=str(DEFAULT_TEXT),
                        help="training text (default: %(default)s)")
    parser.add_argument("--preprocess", choices=("d2l", "letters", "raw"), default="d2l",
                        help="d2l: per-line letters-only lower-case, lines concatenated "
                             "(d2l's corpus); letters: the same on the whole text; raw: as is")
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="training seconds per framework (default %(default)s)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="also stop each framework after this many epochs")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch, numba and BLAS (default: the usable cores)")
    parser.add_argument("--init", choices=("same", "torch"), default="same",
                        help="same: torch starts from fastrnn's initial weights (curves "
                             "comparable epoch by epoch); torch: torch's own initialisation")
    parser.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm",
                        help="recurrent layer (d2l: lstm; torch's nn.LSTM/GRU/RNN)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=35)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write everything here")
    parser.add_argument("--plot", help="perplexity vs training seconds (needs matplotlib)")
    args = parser.parse_args(argv)

    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                               else os.cpu_count())
    import numba
    import torch
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(threads)

    raw = pathlib.Path(args.text).read_text(encoding="utf-8")
    text = preprocess(raw, args.preprocess)
    config = Config(cell=args.cell, hidden=args.hidden, layers=1, batch=args.batch,
                    steps=args.steps, optimizer="sgd", lr=args.lr, clip=args.clip,
                    sampling="random", seed=args.seed, dtype="float32")
    fast = FastrnnSide(text, config, None)
    vocab = fast.trainer.lm.vocab
    data = EpochData(fast.trainer.corpus, config.batch, config.steps, config.seed)
    fast.data = data
    slow = torch_side(torch, len(vocab), config, data, fast.trainer.lm.model, args.init)
    sides = (fast, slow)

    info = machine_info(torch, threads)
    first = data.batches(0)
    print(f"fastrnn {fr.__version__}, torch {torch.__version__}, numpy {np.__version__}, "
          f"numba {info['numba']}; {info['cpu']}, {info['usable_cpus']} usable cores, "
          f"{threads} threads")
    print(f"BLAS: {info['blas']}; OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}")
    print(f"text: {args.text} ({args.preprocess}): {len(text)} characters, vocabulary "
          f"{len(vocab)}, {len(first)} batches of ({config.steps}, {config.batch}) an epoch")
    initial = {side.name: side.loss(*first[0]) for side in sides}
    print("first-batch loss before training: "
          + ", ".join(f"{k} {v:.6f}" for k, v in initial.items()))

    warm = {}
    for side in sides:
        tic = time.perf_counter()
        side.warm_up(*first[0])
        warm[side.name] = time.perf_counter() - tic
    after = {side.name: side.loss(*first[0]) for side in sides}
    assert all(abs(after[k] - initial[k]) < 1e-6 for k in after), "warm-up changed weights"
    info["numba_threading_layer"] = machine_info(torch, threads)["numba_threading_layer"]
    print("warm-up (untimed): " + ", ".join(f"{k} {v:.2f} s" for k, v in warm.items()))
    print(f"training {args.seconds:g} s per framework, alternating epochs:")

    curves = run(sides, args.seconds, args.max_epochs, lambda line: print(line, flush=True))
    summary = summarize(curves, args.seconds)
    print_report(curves, summary, args.seconds)

    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dict(machine=info, config=vars(args) | dict(threads=threads),
                           model=dict(cell=config.cell, hidden=config.hidden,
                                      layers=config.layers, batch=config.batch,
                                      steps=config.steps, lr=config.lr, clip=config.clip,
                                      seed=config.seed, dtype=config.dtype),
                           text=dict(path=args.text, preprocess=args.preprocess,
                                     characters=len(text), vocabulary=len(vocab),
                                     batches_per_epoch=len(first)),
                           initial_loss=initial, warm_up_seconds=warm,
                           curves=curves, summary=summary), handle, indent=1)
    if args.plot:
        plot(curves, args.seconds, args.plot)


if __name__ == "__main__":
    main()
