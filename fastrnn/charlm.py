"""Character-level language models: training, evaluation, generation, checkpoints.

What ``python -m fastrnn train``, ``generate`` and ``demo`` run, usable from
Python as well. The model is d2l's: one-hot characters (token ids, see
:meth:`fastrnn.LSTM.forward`) into a recurrent layer, a :class:`~fastrnn.Linear`
read-out to the vocabulary, softmax cross-entropy; each minibatch is one
window of :class:`~fastrnn.training.TruncatedBPTT`, then global-norm clipping
and one optimizer step.

Checkpoints are one ``.npz`` (:mod:`fastrnn.io`) holding the parameters, the
optimizer's state, the carried recurrent state and, as JSON, the
configuration, the vocabulary, the counters, the sampler's random state at the
start of the current epoch and the metrics so far: enough for ``resume`` to
continue bit for bit as if never interrupted.
"""

import dataclasses
import hashlib
import math
import sys
import time

import numpy as np

from . import io, losses
from ._validation import check_choice, check_int, check_positive
from .data import Vocab, random_batches, sequential_batches, stream_windows
from .nn import GRU, LSTM, RNN, Linear, Sequential
from .training import TruncatedBPTT, clip_grad_norm, optimizers

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
OPTIMIZERS = {"sgd": optimizers.SGD, "adam": optimizers.Adam, "adamw": optimizers.AdamW,
              "rmsprop": optimizers.RMSprop, "adagrad": optimizers.Adagrad,
              "adadelta": optimizers.Adadelta}
SAMPLERS = {"random": random_batches, "sequential": sequential_batches}


class TrainingDiverged(FloatingPointError):
    """A non-finite loss or gradient: training stopped, the last checkpoint was kept."""


@dataclasses.dataclass
class Config:
    """Settings of a character language model and its training (d2l's defaults)."""

    cell: str = "lstm"
    hidden: int = 256
    layers: int = 1
    batch: int = 32
    steps: int = 35
    optimizer: str = "sgd"
    lr: float = 1.0
    clip: float = 1.0
    sampling: str = "random"
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        for name, choices in (("cell", CELLS), ("optimizer", OPTIMIZERS),
                              ("sampling", SAMPLERS), ("dtype", ("float32", "float64"))):
            check_choice(name, getattr(self, name), sorted(choices))
        for name in ("hidden", "layers", "batch", "steps"):
            check_int(name, getattr(self, name), 1)
        check_positive("lr", self.lr)
        if not self.clip >= 0:
            raise ValueError(f"clip must be >= 0 (0: no clipping), got {self.clip!r}")


class CharLM:
    """A character-level language model: vocabulary, network and configuration.

    Parameters
    ----------
    vocab : Vocab
        Character vocabulary; ``<unk>`` (index 0) stands for unseen characters.
    config : Config
    """

    def __init__(self, vocab, config):
        self.vocab, self.config = vocab, config
        size = len(vocab)
        cell = CELLS[config.cell]
        self.model = Sequential([
            cell(size, config.hidden, num_layers=config.layers, dtype=config.dtype,
                 seed=config.seed),
            Linear(config.hidden, size, dtype=config.dtype, seed=config.seed + 1)])

    def loss(self, logits, targets):
        """Mean softmax cross-entropy per character and its gradient."""
        return losses.softmax_cross_entropy(logits, targets)

    def perplexity(self, text):
        """Perplexity of ``text``: ``config.batch`` parallel streams, windows of
        ``config.steps`` characters, state carried, exp of the mean cross-entropy."""
        corpus = self.vocab.encode(text)
        total, count, state = 0.0, 0, None
        for inputs, targets in stream_windows(corpus, self.config.batch, self.config.steps):
            logits, state = self.model(inputs, state)
            loss, _ = losses.softmax_cross_entropy(logits, targets, reduction="sum")
            total, count = total + loss, count + targets.size
        return losses.perplexity(total / count)

    def generate(self, prefix, length, temperature=0.0, seed=0):
        """``prefix`` followed by ``length`` generated characters.

        ``temperature`` 0 takes the most likely character at each step (d2l's
        ``predict``); a positive temperature samples from ``softmax(z / T)``.
        """
        if not prefix:
            raise ValueError("prefix must hold at least one character, got ''")
        rng = np.random.default_rng(seed)
        ids = self.vocab.encode(prefix)
        logits, state = self.model(ids[:, None])
        generated = []
        for _ in range(length):
            scores = logits[-1, 0].astype(np.float64)
            if temperature > 0:
                scores = (scores - scores.max()) / temperature
                probabilities = np.exp(scores) / np.exp(scores).sum()
                token = int(rng.choice(len(probabilities), p=probabilities))
            else:
                token = int(np.argmax(scores))
            generated.append(token)
            logits, state = self.model(np.array([[token]]), state)
        return prefix + self.vocab.decode(generated)

    @classmethod
    def load(cls, path):
        """The model of a checkpoint written by :class:`Trainer` (weights only)."""
        arrays, metadata = io.load_arrays(path, "checkpoint")
        lm = cls(Vocab.from_dict(metadata["vocab"]), Config(**metadata["config"]))
        lm.model.flat_params[...] = arrays["params"]
        return lm


class Trainer:
    """Train a :class:`CharLM` on a text, with checkpoints that resume bit for bit.

    Parameters
    ----------
    text : str
        Training text; the vocabulary is every character in it.
    config : Config
    eval_text : str, optional
        Held-out text, scored (perplexity) after each epoch.
    checkpoint : str or path, optional
        Written (atomically) after every epoch and when training stops.
    progress : file-like or None
        Where the progress bar goes (default ``sys.stderr``); None for silence.
    """

    def __init__(self, text, config, eval_text=None, checkpoint=None, progress=sys.stderr):
        self.lm = CharLM(Vocab.from_text(text, level="char"), config)
        self.corpus = self.lm.vocab.encode(text)
        self.text_digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self.eval_text, self.checkpoint, self.progress = eval_text, checkpoint, progress
        model = self.lm.model
        self.optimizer = OPTIMIZERS[config.optimizer](model, lr=config.lr)
        self.engine = TruncatedBPTT(model, self.lm.loss, config.steps)
        self.rng = np.random.default_rng(config.seed)
        self.epoch, self.batch_index, self.step = 0, 0, 0
        self.epoch_rng_state = None
        self.carried = None
        self.running = dict(loss=0.0, tokens=0, seconds=0.0)
        self.history = []
        self.last_saved_step = None

    # -------------------------------------------------------------- training
    def train(self, epochs=1, max_seconds=None, max_steps=None):
        """Train until ``epochs`` epochs are done (None: no limit), or stop after
        the batch that crosses ``max_seconds`` of training time or reaches
        ``max_steps`` batches in all. Returns the metrics (see :meth:`metrics`)."""
        if epochs is None and max_seconds is None and max_steps is None:
            raise ValueError("train() needs a limit: epochs, max_seconds or max_steps")
        self._warm_up()
        started = time.perf_counter()
        sampler = SAMPLERS[self.lm.config.sampling]
        config = self.lm.config
        while epochs is None or self.epoch < epochs:
            if self.epoch_rng_state is None:
                self.epoch_rng_state = self.rng.bit_generator.state
            else:  # resuming inside this epoch: rebuild it from its starting state
                self.rng.bit_generator.state = self.epoch_rng_state
            batches = sampler(self.corpus, config.batch, config.steps, self.rng)
            while self.batch_index < len(batches):
                self._train_batch(*batches[self.batch_index])
                self.batch_index += 1
                self._show(epochs, len(batches))
                out_of_time = (max_seconds is not None
                               and time.perf_counter() - started >= max_seconds)
                if out_of_time or (max_steps is not None and self.step >= max_steps):
                    if self.batch_index == len(batches):
                        self._end_epoch()
                    self._save()
                    return self.metrics()
            self._end_epoch()
            self._save()
        return self.metrics()

    def _warm_up(self):
        """Compile the kernels (or load them from numba's cache) outside the timings."""
        model = self.lm.model
        tokens = np.zeros((2, self.lm.config.batch), np.int64)
        logits, _, tape = model.forward(tokens)
        model.backward(tape, np.zeros_like(logits))
        model.zero_grad()

    def _train_batch(self, inputs, targets):
        config = self.lm.config
        tic = time.perf_counter()
        hx = self.carried if config.sampling == "sequential" else None
        self.carried, loss = self.engine.run(inputs, targets, hx, self._update)
        if self.lm.model.device == "cuda":
            from numba import cuda
            cuda.synchronize()   # the optimizer's kernels are asynchronous: time them too
        self.running["seconds"] += time.perf_counter() - tic
        self.running["loss"] += loss * targets.size
        self.running["tokens"] += targets.size
        self.step += 1

    def _update(self, window, loss):
        """Clip and step; refuse to go on from a non-finite loss or gradient."""
        where = f"step {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch_index + 1})"
        if not math.isfinite(loss):
            raise TrainingDiverged(self._diverged(f"the loss is {loss} at {where}"))
        clip = self.lm.config.clip
        if clip > 0:
            try:
                clip_grad_norm(self.lm.model, clip, error_if_nonfinite=True)
            except FloatingPointError:
                raise TrainingDiverged(self._diverged(f"a gradient is not finite at {where}")
                                       ) from None
        elif not np.isfinite(self.lm.model.flat_grads).all():
            raise TrainingDiverged(self._diverged(f"a gradient is not finite at {where}"))
        self.optimizer.step()

    def _diverged(self, what):
        kept = (f"the last checkpoint (step {self.last_saved_step}) is kept"
                if self.last_saved_step is not None else "no checkpoint was written")
        return f"training stopped: {what}; {kept}"

    def epoch_so_far(self):
        """Perplexity, tokens/s and training seconds of the epoch in progress."""
        running = self.running
        return dict(perplexity=losses.perplexity(running["loss"] / running["tokens"]),
                    tokens_per_s=running["tokens"] / running["seconds"],
                    seconds=running["seconds"])

    def _end_epoch(self):
        entry = dict(epoch=self.epoch + 1, **self.epoch_so_far())
        if self.eval_text is not None:
            entry["eval_perplexity"] = self.lm.perplexity(self.eval_text)
        self.history.append(entry)
        self.epoch += 1
        self.batch_index, self.epoch_rng_state, self.carried = 0, None, None
        self.running = dict(loss=0.0, tokens=0, seconds=0.0)

    def metrics(self):
        """A JSON-ready summary: vocabulary size, tokens/s and the per-epoch curve."""
        tokens = sum(e["tokens_per_s"] * e["seconds"] for e in self.history)
        seconds = sum(e["seconds"] for e in self.history)
        result = dict(vocab_size=len(self.lm.vocab), config=dataclasses.asdict(self.lm.config),
                      steps_trained=self.step,
                      tokens_per_s=tokens / seconds if seconds else None,
                      epochs=self.history)
        if self.history and "eval_perplexity" in self.history[-1]:
            result["eval_perplexity"] = self.history[-1]["eval_perplexity"]
        return result

    def _show(self, epochs, batches):
        """The progress bar: redrawn in place on a terminal (at most 10 times a
        second), one line per epoch otherwise."""
        if self.progress is None:
            return
        last = self.batch_index == batches
        interactive = getattr(self.progress, "isatty", lambda: False)()
        now = time.perf_counter()
        if not last and (not interactive or now - getattr(self, "_shown", 0.0) < 0.1):
            return
        self._shown = now
        so_far = self.epoch_so_far()
        width = 24
        done = int(width * self.batch_index / batches)
        of = "" if epochs is None else f"/{epochs}"
        line = (f"\repoch {self.epoch + 1}{of} [{'#' * done}{'.' * (width - done)}] "
                f"batch {self.batch_index}/{batches}  "
                f"perplexity {so_far['perplexity']:7.3f}  "
                f"{so_far['tokens_per_s'] / 1000:7.1f}k tokens/s")
        self.progress.write((line if interactive else line[1:]) + ("\n" if last else ""))
        self.progress.flush()

    # ----------------------------------------------------------- checkpoints
    def _save(self):
        if self.checkpoint is None:
            return
        arrays = {"params": self.lm.model.flat_params}
        scalars = {}
        for name, value in self.optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer.{name}"] = value
            else:
                scalars[name] = value
        carried = self.carried or []
        for index, state in enumerate(carried):
            for part, array in enumerate(state if isinstance(state, tuple) else (state,)):
                arrays[f"carried.{index}.{part}"] = array
        metadata = dict(config=dataclasses.asdict(self.lm.config), vocab=self.lm.vocab.to_dict(),
                        text_sha256=self.text_digest, optimizer=scalars,
                        epoch=self.epoch, batch_index=self.batch_index, step=self.step,
                        epoch_rng_state=self.epoch_rng_state,
                        rng_state=self.rng.bit_generator.state, running=self.running,
                        history=self.history, carried_layers=len(carried))
        io.save_arrays(self.checkpoint, arrays, metadata, "checkpoint")
        self.last_saved_step = self.step

    def resume(self):
        """Continue from :attr:`checkpoint`: parameters, optimizer, counters, sampler."""
        arrays, metadata = io.load_arrays(self.checkpoint, "checkpoint")
        if metadata["text_sha256"] != self.text_digest:
            raise ValueError(f"checkpoint {str(self.checkpoint)!r} was trained on another text; "
                             "resume with the same --text")
        if metadata["config"] != dataclasses.asdict(self.lm.config):
            raise ValueError(f"checkpoint {str(self.checkpoint)!r} has the configuration "
                             f"{metadata['config']}, not {dataclasses.asdict(self.lm.config)}")
        self.lm.model.flat_params[...] = arrays["params"]
        state = dict(metadata["optimizer"])
        state.update({name[len("optimizer."):]: value for name, value in arrays.items()
                      if name.startswith("optimizer.")})
        self.optimizer.load_state_dict(state)
        self.epoch, self.batch_index, self.step = (metadata["epoch"], metadata["batch_index"],
                                                   metadata["step"])
        self.epoch_rng_state = metadata["epoch_rng_state"]
        self.rng.bit_generator.state = metadata["rng_state"]
        self.running, self.history = metadata["running"], metadata["history"]
        self.carried = self._carried(arrays, metadata["carried_layers"])
        self.last_saved_step = self.step

    def _carried(self, arrays, layers):
        if not layers:
            return None
        states = []
        for index in range(layers):
            parts = [arrays[name] for name in sorted(arrays)
                     if name.startswith(f"carried.{index}.")]
            states.append(tuple(parts) if len(parts) > 1 else parts[0])
        return states
