"""The CUDA backend: ``numba.cuda`` kernels on device arrays.

Same entry points and signatures as :mod:`fastrnn.kernels.cpu`: ``SCANS[kind]``
is the ``(forward, backward)`` pair for one direction of one layer of cell
``kind``, ``DENSE`` the dense layer's pair, with device arrays where the CPU
backend takes NumPy arrays (weights and gradients are views of the layer's
device-resident flat buffers). ``EMBEDDING`` is the embedding table's pair,
which has no CPU twin (the CPU layer indexes NumPy arrays). Each scan runs
one kernel launch per step for the pointwise math around a tiled
shared-memory GEMM (:mod:`._gemm`), or, for small batches, the whole time
loop in one launch (:mod:`.persistent`).
``ARRAYS`` holds the device-array operations the layers apply between scans
(:mod:`._arrays`). Importing this package imports ``numba.cuda``
(and so needs numba-cuda), which is why only :mod:`fastrnn.device` imports it,
on first use of ``device="cuda"``.
"""

from . import clip, dense, embedding, gru, lstm, optim, rnn
from ._arrays import ARRAYS

__all__ = ["ARRAYS", "DENSE", "EMBEDDING", "NAME", "SCANS", "clip", "optim"]

NAME = "cuda"

SCANS = {
    "rnn": (rnn.forward, rnn.backward),
    "lstm": (lstm.forward, lstm.backward),
    "gru": (gru.forward, gru.backward),
}

#: ``(forward, backward)`` of a dense layer; see :mod:`.dense`.
DENSE = (dense.forward, dense.backward)

#: ``(forward, backward)`` of an embedding table; see :mod:`.embedding`.
EMBEDDING = (embedding.forward, embedding.backward)
