"""asv: the char-LM training step and truncated BPTT's memory.

The char-LM step is the whole of ``python -m fastrnn train``'s inner loop
(one-hot input as a gather, LSTM, Linear, softmax cross-entropy, global-norm
clipping, SGD) at d2l's settings, on text that needs no download, on the CPU
and (where a real GPU is usable) with the model on the GPU: a CUDA
``Sequential``, fed the same NumPy windows, its logits back on the host for
the loss.
"""

import numpy as np

import fastrnn as fr
from fastrnn.charlm import OPTIMIZERS, Config, Trainer
from fastrnn.data import random_batches
from fastrnn.data.corpus import stdlib_text
from fastrnn.saving import build_model, describe_model
from fastrnn.training import TruncatedBPTT

from ._common import require_device


def _move_trainer(trainer, device):
    """Give ``trainer`` a copy of its model on ``device``, with a new optimizer and engine
    (what :class:`~fastrnn.charlm.Trainer` builds from its model)."""
    lm, config = trainer.lm, trainer.lm.config
    lm.model = build_model(describe_model(lm.model), lm.model.state_dict(), device)
    trainer.optimizer = OPTIMIZERS[config.optimizer](lm.model, lr=config.lr)
    trainer.engine = TruncatedBPTT(lm.model, lm.loss, config.steps)


class CharLMStep:
    params = (["lstm", "gru", "rnn"], ["cpu", "cuda"])
    param_names = ("cell", "device")
    timeout = 600

    def setup(self, cell, device):
        require_device(device)
        self.trainer = Trainer(stdlib_text(60_000), Config(cell=cell), progress=None)
        if device != "cpu":
            _move_trainer(self.trainer, device)
        config = self.trainer.lm.config
        self.batches = random_batches(self.trainer.corpus, config.batch, config.steps,
                                      np.random.default_rng(0))
        self.trainer._train_batch(*self.batches[0])   # compile outside the timings

    def time_train_step(self, cell, device):
        self.trainer._train_batch(*self.batches[1])

    def track_tokens_per_second(self, cell, device):
        running = self.trainer.running
        tokens, seconds = running["tokens"], running["seconds"]
        for inputs, targets in self.batches[:20]:
            self.trainer._train_batch(inputs, targets)
        return (running["tokens"] - tokens) / (running["seconds"] - seconds)

    track_tokens_per_second.unit = "tokens/s"


class TruncatedBPTTMemory:
    """Peak memory of a TBPTT run over a long sequence: flat in T for a fixed k2."""

    params = ([1000, 4000], [50, 200])
    param_names = ("steps", "k2")
    timeout = 600

    def setup(self, steps, k2):
        self.model = fr.Sequential([fr.LSTM(8, 128, seed=0), fr.Linear(128, 1, seed=1)])
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((steps, 16, 8)).astype(np.float32)
        self.targets = rng.standard_normal((steps, 16, 1)).astype(np.float32)
        self.engine = fr.training.TruncatedBPTT(self.model, fr.losses.mse, 50, k2)
        self.engine.run(self.x[:k2 + 50], self.targets[:k2 + 50])

    def peakmem_tbptt(self, steps, k2):
        self.engine.run(self.x, self.targets)
