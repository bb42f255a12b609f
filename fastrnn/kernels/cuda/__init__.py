"""The CUDA backend: ``numba.cuda`` kernels, NumPy arrays in and out.

Same entry points and signatures as :mod:`fastrnn.kernels.cpu`: ``SCANS[kind]``
is the ``(forward, backward)`` pair for one direction of one layer of cell
``kind``, ``DENSE`` the dense layer's pair. Each call copies its inputs and
weights to the GPU, runs one kernel launch per step for the pointwise math
around a tiled shared-memory GEMM (:mod:`._gemm`), and copies the results back
into the caller's host arrays. Importing this package imports ``numba.cuda``
(and so needs numba-cuda), which is why only :mod:`fastrnn.device` imports it,
on first use of ``device="cuda"``.
"""

from . import dense, gru, lstm, rnn

NAME = "cuda"

SCANS = {
    "rnn": (rnn.forward, rnn.backward),
    "lstm": (lstm.forward, lstm.backward),
    "gru": (gru.forward, gru.backward),
}

#: ``(forward, backward)`` of a dense layer; see :mod:`.dense`.
DENSE = (dense.forward, dense.backward)
