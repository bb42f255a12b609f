"""The static description of a recurrent cell that layers hand to backends."""

from dataclasses import dataclass

#: Number of gate blocks in ``weight_ih``/``weight_hh`` per cell kind.
_GATES = {"rnn": 1, "gru": 3, "lstm": 4}


@dataclass(frozen=True)
class CellSpec:
    """What a backend needs to know about a cell, beyond its weights.

    Attributes
    ----------
    kind : {"rnn", "lstm", "gru"}
    hidden_size : int
        ``H``: size of the hidden state (and of the LSTM cell state).
    proj_size : int
        LSTM projection size ``P``; 0 means no projection.
    nonlinearity : {"tanh", "relu"}
        RNN only.
    peephole, coupled : bool
        LSTM only: diagonal peephole connections; coupled input and forget
        gates (``i = 1 - f``).
    reset_after : bool
        GRU only: apply the reset gate after the recurrent product (PyTorch)
        or before it (Cho et al.).
    bias : bool
    """

    kind: str
    hidden_size: int
    proj_size: int = 0
    nonlinearity: str = "tanh"
    peephole: bool = False
    coupled: bool = False
    reset_after: bool = True
    bias: bool = True

    @property
    def num_gates(self):
        """Gate blocks in the weight matrices (3 for a coupled LSTM)."""
        if self.kind == "lstm" and self.coupled:
            return 3
        return _GATES[self.kind]

    @property
    def output_size(self):
        """Size of ``h``: the projection size if there is one, else ``H``."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    @property
    def has_cell_state(self):
        """True for the LSTM, whose state is the pair ``(h, c)``."""
        return self.kind == "lstm"
