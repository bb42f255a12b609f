"""asv: the char-LM training step and truncated BPTT's memory.

The char-LM step is the whole of ``python -m fastrnn train``'s inner loop
(one-hot input as a gather, LSTM, Linear, softmax cross-entropy, global-norm
clipping, SGD) at d2l's settings, on text that needs no download.
"""

import numpy as np

import fastrnn as fr
from fastrnn.charlm import Config, Trainer
from fastrnn.data import random_batches
from fastrnn.data.corpus import stdlib_text


class CharLMStep:
    params = (["lstm", "gru", "rnn"],)
    param_names = ("cell",)
    timeout = 600

    def setup(self, cell):
        self.trainer = Trainer(stdlib_text(60_000), Config(cell=cell), progress=None)
        config = self.trainer.lm.config
        self.batches = random_batches(self.trainer.corpus, config.batch, config.steps,
                                      np.random.default_rng(0))
        self.trainer._train_batch(*self.batches[0])   # compile outside the timings

    def time_train_step(self, cell):
        self.trainer._train_batch(*self.batches[1])

    def track_tokens_per_second(self, cell):
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
