"""Character-level language model: train, watch the perplexity fall, generate text.

The model is the one of d2l's chapter on recurrent networks: every character
is a token id (one-hot input, which the recurrent layer turns into a gather of
its input weights), an LSTM reads the text, and a Linear layer scores the next
character. :class:`fastrnn.charlm.Trainer` does the training loop for us:

* it cuts the text into minibatches of ``--batch`` streams of ``--steps``
  characters (``fastrnn.data.random_batches``),
* runs each through :class:`fastrnn.training.TruncatedBPTT` (forward, softmax
  cross-entropy, backward), clips the global gradient norm and takes one
  optimizer step,
* scores a held-out text after every epoch and writes a checkpoint (one
  ``.npz`` file with the weights, the optimizer state and the vocabulary).

Perplexity is ``exp(mean cross-entropy per character)``: 27 would be a
uniform guess over a 27-letter alphabet, a few units means the model has
learned a good deal of English spelling.

Run it from the repository root::

    python examples/char_lm.py                        # ~1-2 minutes, stdlib docstrings
    python examples/char_lm.py --text ../shared/data/timemachine.txt
    python examples/char_lm.py --tiny                 # a few seconds (CI)

Any plain-text file works for ``--text`` (for example the d2l corpus
``timemachine.txt``); by default it is cleaned as d2l does (letters only,
lower-cased, every other run of characters becomes one space), ``--raw`` keeps
it as it is.
"""

import argparse
import pathlib
import re
import sys
import tempfile
import time

from fastrnn.charlm import CharLM, Config, Trainer
from fastrnn.data.corpus import stdlib_text


def load_text(path, raw=False, max_chars=None):
    """The training corpus: a file's text, or the standard library's docstrings."""
    if path is None:
        text = stdlib_text()            # already letters only and lower-cased
    else:
        text = pathlib.Path(path).read_text(encoding="utf-8")
        if not raw:                     # d2l's preprocessing of The Time Machine
            text = re.sub("[^A-Za-z]+", " ", text).lower().strip()
    return text[:max_chars] if max_chars else text


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text", help="a plain-text file (default: the Python standard "
                        "library's docstrings, which need no download)")
    parser.add_argument("--raw", action="store_true",
                        help="keep the text as it is (default: letters only, lower case)")
    parser.add_argument("--max-chars", type=int, default=None, help="use only the start")
    parser.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=35, help="characters per window")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--clip", type=float, default=1.0, help="global gradient norm (0: off)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--max-seconds", type=float, default=150.0,
                        help="stop after the batch that crosses this much training time")
    parser.add_argument("--held-out", type=float, default=0.1,
                        help="fraction of the text (at its end) kept for evaluation")
    parser.add_argument("--checkpoint", help="where to write the checkpoint (default: a "
                        "temporary file, deleted at the end)")
    parser.add_argument("--prefix", nargs="+", default=["the ", "return a "])
    parser.add_argument("--length", type=int, default=60, help="characters to generate")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0: always the most likely character; > 0: sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    parser.add_argument("--tiny", action="store_true",
                        help="a few seconds at tiny sizes (a smoke test)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.max_chars, args.hidden, args.batch, args.steps = 3000, 16, 8, 10
        args.epochs, args.length, args.max_seconds = 2, 20, 30.0
    return args


def main(argv=None):
    args = parse_args(argv)
    text = load_text(args.text, args.raw, args.max_chars)
    split = int(len(text) * (1 - args.held_out))
    train_text, eval_text = text[:split], text[split:] or None
    print(f"corpus: {args.text or 'standard library docstrings'}, {len(text):,} characters "
          f"({len(train_text):,} to train on, {len(text) - len(train_text):,} held out)")

    config = Config(cell=args.cell, hidden=args.hidden, batch=args.batch, steps=args.steps,
                    optimizer=args.optimizer, lr=args.lr, clip=args.clip, seed=args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.checkpoint or str(pathlib.Path(scratch) / "char_lm.npz")
        trainer = Trainer(train_text, config, eval_text=eval_text, checkpoint=checkpoint,
                          progress=sys.stderr if args.progress else None)
        print(f"model: {args.cell.upper()} with {args.hidden} hidden units over "
              f"{len(trainer.lm.vocab)} symbols, {trainer.lm.model.flat_params.size:,} "
              f"parameters; {args.optimizer} lr {args.lr}, clip {args.clip}")

        # --- train, one epoch at a time so that we can print the curve as it goes
        print("epoch  train ppl  held-out ppl  tokens/s")
        started = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            left = args.max_seconds - (time.perf_counter() - started)
            metrics = trainer.train(epochs=epoch, max_seconds=max(left, 1e-3))
            if len(trainer.history) < epoch:   # the time budget ran out inside the epoch
                print(f"(stopped after {args.max_seconds:g} s, inside epoch {epoch})")
                break
            entry = metrics["epochs"][-1]
            held_out = entry.get("eval_perplexity", float("nan"))
            print(f"{entry['epoch']:5d}  {entry['perplexity']:9.3f}  {held_out:12.3f}  "
                  f"{entry['tokens_per_s']:8.0f}", flush=True)
        print(f"trained {trainer.step} minibatches in {time.perf_counter() - started:.1f} s "
              f"(uniform guess: perplexity {len(trainer.lm.vocab)})")

        # --- generate from the model in memory
        print("greedy generation from the trained model:")
        for prefix in args.prefix:
            print(f"  > {trainer.lm.generate(prefix, args.length, args.temperature, args.seed)!r}")

        # --- and from the checkpoint on disk: CharLM.load rebuilds the vocabulary,
        # the configuration and the weights, so a later session needs only the file
        restored = CharLM.load(checkpoint)
        where = checkpoint if args.checkpoint else "a temporary file (--checkpoint PATH keeps it)"
        print(f"checkpoint written to {where}; generation from CharLM.load of it:")
        for prefix in args.prefix:
            sample = restored.generate(prefix, args.length, args.temperature, args.seed)
            same = sample == trainer.lm.generate(prefix, args.length, args.temperature,
                                                 args.seed)
            print(f"  > {sample!r}  (same as in memory: {same})")
        if eval_text:
            print(f"held-out perplexity of the restored model: "
                  f"{restored.perplexity(eval_text):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
