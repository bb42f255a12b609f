"""The CPU backend: ``@numba.njit`` scans over time, BLAS for the GEMMs.

``SCANS[kind]`` is the ``(forward, backward)`` pair for one direction of one
layer of cell ``kind``; see :mod:`fastrnn.kernels` for the signatures.
"""

from . import dense, gru, lstm, rnn

NAME = "cpu"

SCANS = {
    "rnn": (rnn.forward, rnn.backward),
    "lstm": (lstm.forward, lstm.backward),
    "gru": (gru.forward, gru.backward),
}

#: ``(forward, backward)`` of a dense layer; see :mod:`.dense`.
DENSE = (dense.forward, dense.backward)
