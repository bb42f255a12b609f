"""Command line: ``python -m fastrnn {info,demo,train,generate}``."""

import argparse
import json
import pathlib
import platform
import sys
import time


def info():
    """Print versions, backend, threads, BLAS and CUDA status, then run the self-check."""
    import numba
    import numpy as np
    import scipy

    import fastrnn
    from fastrnn import selfcheck
    from fastrnn.device import cuda_status, resolve_device

    print(f"fastrnn {fastrnn.__version__} (Python {platform.python_version()}, "
          f"{platform.machine()})")
    print(f"numpy {np.__version__}, numba {numba.__version__}, scipy {scipy.__version__}")
    print(f"backend: {resolve_device('auto')} (device='auto')")
    usable, reason = cuda_status()
    print(f"CUDA: {'available' if usable else 'not available'} ({reason})")
    from fastrnn import config
    from fastrnn.kernels.cpu._threads import use_parallel_scan
    threaded = use_parallel_scan(config.PARALLEL_MIN_WORK, config.PARALLEL_MIN_BATCH)
    scans = f"on from {config.PARALLEL_MIN_WORK} multiply-adds a step" if threaded else "off"
    print(f"numba threads: {numba.get_num_threads()} (threading layer: "
          f"{numba.config.THREADING_LAYER}; threaded LSTM scans: {scans})")
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the kernels call, loaded now)
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                role = "kernels" if "scipy.libs" in pool.get("filepath", "") else "numpy"
                print(f"BLAS ({role}): {pool.get('internal_api')} {pool.get('version')} "
                      f"({pool.get('architecture')}), {pool.get('num_threads')} threads, "
                      f"{pool.get('filepath')}")
    except ImportError:
        print("BLAS: unknown (threadpoolctl not installed)")
    print("self-check: errors against a float64 NumPy reference (relative, max norm)")
    ok = selfcheck.run()
    print("self-check passed" if ok else "self-check FAILED")
    return 0 if ok else 1


def demo(args):
    """Train a small character LSTM on the standard library's docstrings, then generate."""
    from fastrnn.charlm import Config, Trainer
    from fastrnn.data.corpus import stdlib_text

    text = stdlib_text()
    print(f"corpus: docstrings of {len(text)} characters from the installed Python standard "
          "library (letters only, lowercased)")
    config = Config(seed=args.seed)
    print(f"model: {config.cell.upper()} hidden {config.hidden}, batch {config.batch} x "
          f"{config.steps} steps, SGD lr {config.lr}, clip {config.clip}; "
          f"training for {args.seconds:g} s")
    tic = time.perf_counter()
    trainer = Trainer(text, config)
    trainer.train(epochs=None, max_seconds=args.seconds)
    if trainer.batch_index:
        sys.stderr.write("\n")
    running = trainer.epoch_so_far() if trainer.batch_index else trainer.history[-1]
    print(f"trained {trainer.step} batches in {time.perf_counter() - tic:.1f} s: perplexity "
          f"{running['perplexity']:.2f}, {running['tokens_per_s'] / 1000:.0f}k tokens/s")
    for prefix in args.prefix:
        print(f"> {trainer.lm.generate(prefix, args.length)}")
    return 0


def train(args):
    """``python -m fastrnn train``: see the module docstring of :mod:`fastrnn.charlm`."""
    from fastrnn.charlm import Config, Trainer, TrainingDiverged

    text = _read_text("--text", args.text)
    eval_text = _read_text("--eval-text", args.eval_text) if args.eval_text else None
    config = Config(cell=args.cell, hidden=args.hidden, layers=args.layers, batch=args.batch,
                    steps=args.steps, optimizer=args.optimizer, lr=args.lr, clip=args.clip,
                    sampling=args.sampling, seed=args.seed, dtype=args.dtype)
    if args.resume and not args.checkpoint:
        raise SystemExit("--resume needs --checkpoint PATH")
    trainer = Trainer(text, config, eval_text, args.checkpoint,
                      progress=None if args.quiet else sys.stderr)
    if args.resume:
        trainer.resume()
    epochs = args.epochs if args.epochs is not None else (None if args.max_seconds else 1)
    try:
        metrics = trainer.train(epochs, args.max_seconds, args.max_steps)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    for entry in metrics["epochs"][-1:]:
        line = f"epoch {entry['epoch']}: perplexity {entry['perplexity']:.3f}"
        if "eval_perplexity" in entry:
            line += f", eval perplexity {entry['eval_perplexity']:.3f}"
        print(line + f", {entry['tokens_per_s']:.0f} tokens/s")
    if args.metrics:
        pathlib.Path(args.metrics).write_text(json.dumps(metrics, indent=2))
    return 0


def generate(args):
    """``python -m fastrnn generate``: text from a checkpoint."""
    from fastrnn.charlm import CharLM

    print(CharLM.load(args.checkpoint).generate(args.prefix, args.length, args.temperature,
                                                args.seed))
    return 0


def _read_text(option, path):
    try:
        return pathlib.Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SystemExit(f"{option}: cannot read {path!r}: {error.strerror}") from None


def _parser():
    from fastrnn.charlm import CELLS, OPTIMIZERS, SAMPLERS

    parser = argparse.ArgumentParser(prog="python -m fastrnn",
                                     description="fastrnn command line")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="versions, threads, BLAS, CUDA, and a self-check")
    demo_parser = commands.add_parser(
        "demo", help="train a character LSTM for about a minute on the standard library's "
                     "docstrings (no download), then generate text")
    demo_parser.add_argument("--seconds", type=float, default=60.0)
    demo_parser.add_argument("--prefix", nargs="+", default=["the ", "return a "])
    demo_parser.add_argument("--length", type=int, default=80)
    demo_parser.add_argument("--seed", type=int, default=0)
    train_parser = commands.add_parser("train", help="train a character language model")
    train_parser.add_argument("--text", required=True, help="training text (UTF-8)")
    train_parser.add_argument("--eval-text", help="held-out text scored after each epoch")
    train_parser.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    train_parser.add_argument("--hidden", type=int, default=256)
    train_parser.add_argument("--layers", type=int, default=1)
    train_parser.add_argument("--batch", type=int, default=32)
    train_parser.add_argument("--steps", type=int, default=35)
    train_parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    train_parser.add_argument("--lr", type=float, default=1.0)
    train_parser.add_argument("--clip", type=float, default=1.0,
                              help="global gradient-norm clip (0: none)")
    train_parser.add_argument("--sampling", choices=sorted(SAMPLERS), default="random")
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    train_parser.add_argument("--epochs", type=int,
                              help="epochs in all, counting those of a resumed checkpoint "
                                   "(default 1, or unlimited with --max-seconds)")
    train_parser.add_argument("--max-seconds", type=float,
                              help="stop after the batch that crosses this training time")
    train_parser.add_argument("--max-steps", type=int,
                              help="stop after this many batches in all")
    train_parser.add_argument("--metrics", help="write the metrics here as JSON")
    train_parser.add_argument("--checkpoint", help="checkpoint file (.npz), written atomically "
                                                   "after each epoch and at the end")
    train_parser.add_argument("--resume", action="store_true",
                              help="continue from --checkpoint exactly where it stopped")
    train_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    generate_parser = commands.add_parser("generate", help="generate text from a checkpoint")
    generate_parser.add_argument("--checkpoint", required=True)
    generate_parser.add_argument("--prefix", default="time traveller")
    generate_parser.add_argument("--length", type=int, default=200)
    generate_parser.add_argument("--temperature", type=float, default=0.0,
                                 help="0: the most likely character each step")
    generate_parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    commands = dict(info=lambda _: info(), demo=demo, train=train, generate=generate)
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
