"""User-facing layers and cells."""

from .cells import GRUCell, LSTMCell, RNNCell
from .dense import Dropout, Embedding, Linear
from .layers import GRU, LSTM, RNN
from .recurrent import RecurrentLayer, Tape
from .sequential import Sequential

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Linear", "Embedding",
           "Dropout", "Sequential", "RecurrentLayer", "Tape"]
