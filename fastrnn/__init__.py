"""fastrnn: Numba-accelerated recurrent networks with explicit forward and backward.

Importing the package compiles nothing and probes no GPU: kernels compile (and
are cached on disk) the first time a layer runs.
"""

from ._version import __version__
from . import data, losses, training
from .nn import (GRU, LSTM, RNN, Dropout, Embedding, GRUCell, Linear, LSTMCell, RNNCell,
                 Sequential)
from .device import to_numpy
from .saving import load, save

__all__ = ["__version__", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Linear",
           "Embedding", "Dropout", "Sequential", "save", "load", "to_numpy", "data", "losses",
           "training"]
