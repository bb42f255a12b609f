"""Single-step cells: :class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`.

A cell is one time step of the matching one-layer layer: it runs through the
same kernels, so a cell step and a layer step agree bit for bit. Parameter
names are PyTorch's cell names (``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``, and ``weight_ch`` for peepholes).
"""

import numpy as np

from .._validation import as_float_array, check_shape, describe, is_device_array
from ._params import HasParameters, ParameterStore
from .layers import GRU, LSTM, RNN


class CellTape:
    """What a cell's :meth:`backward` needs from its :meth:`forward`."""

    __slots__ = ("owner", "layer_tape")

    def __init__(self, owner, layer_tape):
        self.owner = owner
        self.layer_tape = layer_tape


class _Cell(HasParameters):
    """Shared machinery: a one-layer layer run for one step."""

    _layer_class = None

    def __init__(self, input_size, hidden_size, **options):
        self._layer = self._layer_class(input_size, hidden_size, 1, **options)
        self.input_size = self._layer.input_size
        self.hidden_size = self._layer.hidden_size
        self.dtype = self._layer.dtype
        self.device = self._layer.device
        self._store = ParameterStore.renamed(
            self._layer._store, {name[:-len("_l0")]: name for name in self._layer.params})

    def __call__(self, x, hx=None):
        """One step, keeping no tape. Returns the new state."""
        return self._step(x, hx, keep_tape=False)[0]

    def forward(self, x, hx=None):
        """One step, keeping what :meth:`backward` needs.

        Parameters
        ----------
        x : ndarray, shape (B, input_size) or (input_size,)
        hx : ndarray of shape (B, hidden_size) (or (hidden_size,)), or None
            Zeros when None; for the LSTM cell the pair ``(h, c)``.

        Returns
        -------
        h : ndarray or tuple of ndarray
            The new state, shaped as ``hx`` (the pair ``(h, c)`` for LSTM).
        tape : CellTape
        """
        return self._step(x, hx, keep_tape=True)

    def backward(self, tape, dh):
        """Backpropagate one step.

        Parameters
        ----------
        tape : CellTape
        dh : ndarray, tuple or None
            Gradient with respect to the new state (for the LSTM cell the pair
            ``(dh, dc)``, either of which may be None).

        Returns
        -------
        dx : ndarray
        dhx : ndarray or tuple of ndarray
        """
        if not isinstance(tape, CellTape) or tape.owner is not self:
            raise TypeError("tape must be the CellTape returned by this cell's forward(), "
                            f"got {describe(tape)}")
        dh = self._state_for_layer("dh", dh, tape.layer_tape.unbatched, tape.layer_tape.batch)
        dx, dhx = self._layer.backward(tape.layer_tape, None, dh)
        return dx[0], self._state_from_layer(dhx)

    def _step(self, x, hx, keep_tape):
        device_x = is_device_array(x)   # checked as a GPU array only by a CUDA cell
        x = (self._layer._arrays.float_input if device_x else as_float_array)("x", x, self.dtype)
        if x.ndim not in (1, 2) or tuple(x.shape)[-1] != self.input_size:
            raise ValueError(f"x must have shape (B, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(x.shape)}")
        batch = 1 if x.ndim == 1 else x.shape[0]
        hx = self._state_for_layer("hx", hx, x.ndim == 1, batch)
        x = x.reshape((1,) + tuple(x.shape)) if device_x else x[None]
        _, h_n, layer_tape = self._layer._run(x, hx, None, keep_tape)
        tape = CellTape(self, layer_tape) if keep_tape else None
        return self._state_from_layer(h_n), tape

    def _state_for_layer(self, name, value, unbatched, batch):
        """A cell state (or its gradient) checked and given the layer's leading axis."""
        shape = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        parts = self._layer._split_state(name, value, 2 if self._layer.spec.has_cell_state else 1)
        checked = []
        for index, part in enumerate(parts):
            if part is not None:
                part_name = f"{name}[{index}]" if len(parts) > 1 else name
                part = check_shape(part_name, self._layer._arrays.float_input(
                    part_name, part, self.dtype), shape)
                part = part.reshape((1,) + tuple(part.shape))
            checked.append(part)
        return tuple(checked) if len(parts) > 1 else checked[0]

    def _state_from_layer(self, state):
        row = self._layer._arrays.row
        if isinstance(state, tuple):
            return tuple(row(s, 0) for s in state)
        return row(state, 0)

    def __repr__(self):
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size}, dtype={self.dtype})"


class RNNCell(_Cell):
    r"""One step of an Elman RNN, like ``torch.nn.RNNCell``.

    .. math:: h' = \phi(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool, default True
    nonlinearity : {"tanh", "relu"}, default "tanh"
    dtype, device, seed
        As for :class:`~fastrnn.RNN`.
    """

    _layer_class = RNN

    def __init__(self, input_size, hidden_size, *, bias=True, nonlinearity="tanh", dtype=np.float32,
                 device="auto", seed=None):
        super().__init__(input_size, hidden_size, bias=bias, nonlinearity=nonlinearity,
                         dtype=dtype, device=device, seed=seed)


class LSTMCell(_Cell):
    r"""One step of an LSTM, like ``torch.nn.LSTMCell``, with optional peepholes and CIFG.

    .. math::

        i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi} + p_i \odot c), \quad
        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf} + p_f \odot c) \\
        g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}), \quad
        c' = f \odot c + i \odot g \\
        o &= \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho} + p_o \odot c'), \quad
        h' = o \odot \tanh(c')

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool, default True
    peephole, coupled : bool, default False
        As for :class:`~fastrnn.LSTM`.
    dtype, device, seed
        As for :class:`~fastrnn.LSTM`.
    """

    _layer_class = LSTM

    def __init__(self, input_size, hidden_size, *, bias=True, peephole=False, coupled=False,
                 dtype=np.float32, device="auto", seed=None):
        super().__init__(input_size, hidden_size, bias=bias, peephole=peephole, coupled=coupled,
                         dtype=dtype, device=device, seed=seed)


class GRUCell(_Cell):
    r"""One step of a GRU, like ``torch.nn.GRUCell``.

    .. math::

        r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}), \quad
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})), \quad
        h' = (1 - z) \odot n + z \odot h

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool, default True
    reset_after : bool, default True
        As for :class:`~fastrnn.GRU`.
    dtype, device, seed
        As for :class:`~fastrnn.GRU`.
    """

    _layer_class = GRU

    def __init__(self, input_size, hidden_size, *, bias=True, reset_after=True, dtype=np.float32,
                 device="auto", seed=None):
        super().__init__(input_size, hidden_size, bias=bias, reset_after=reset_after,
                         dtype=dtype, device=device, seed=seed)
