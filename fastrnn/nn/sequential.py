"""A stack of layers with one flat parameter buffer: :class:`Sequential`."""

import numpy as np

from .._validation import as_float_array, check_bool, describe, is_device_array
from .._validation import check_finite as check_finite_values
from ._params import HasParameters, ParameterStore
from .dense import Dropout, Embedding, Linear
from .recurrent import RecurrentLayer

_LAYER_TYPES = (RecurrentLayer, Linear, Embedding, Dropout)


class SequentialTape(list):
    """The layers' tapes, in order, and whether the forward's input was on the host.

    A ``device="cuda"`` :class:`Sequential` given NumPy input uploads it once
    and runs every layer on the GPU; ``host_input`` tells :meth:`Sequential.backward`
    to bring ``dx`` and ``dhx`` back to the host, as the outputs were.
    """

    def __init__(self, tapes=(), host_input=False, owner=None):
        super().__init__(tapes)
        self.host_input = host_input
        self.owner = owner


class Sequential(HasParameters):
    """Layers applied in order, their parameters in one flat buffer.

    Parameter names are ``"{index}.{name}"`` (``torch.nn.Sequential``'s), so
    ``state_dict()`` loads into the equivalent torch model. Each layer's
    ``params`` and ``grads`` stay views, now into :attr:`flat_params` and
    :attr:`flat_grads`: an optimizer or a clip on the flat buffers sees every
    layer.

    A recurrent layer passes on its output sequence; its state goes in through
    ``hx`` and out through the returned states, one entry per recurrent layer,
    so a caller can carry state from one window to the next (truncated BPTT) or
    reset it.

    Parameters
    ----------
    layers : sequence
        :class:`~fastrnn.RNN`/:class:`~fastrnn.LSTM`/:class:`~fastrnn.GRU`,
        :class:`~fastrnn.Linear`, :class:`~fastrnn.Embedding`,
        :class:`~fastrnn.Dropout`, all with parameters of one dtype and on one
        device. The layers are adopted: their parameters move into this
        model's buffers.

    Attributes
    ----------
    device : {"cpu", "cuda"}
        The layers' device. A ``"cuda"`` model keeps its buffers on the GPU
        (the layers' views too). It takes NumPy or GPU arrays: NumPy input is
        uploaded once, every layer runs on the GPU, and the outputs (and
        backward's ``dx`` and ``dhx``) come back as NumPy arrays; GPU input
        gives GPU outputs.

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> model = fr.Sequential([fr.Embedding(10, 4, seed=0), fr.LSTM(4, 8, seed=0),
    ...                        fr.Linear(8, 10, seed=0)])
    >>> tokens = np.zeros((5, 2), np.int64)                # (steps, batch)
    >>> logits, states, tape = model.forward(tokens)
    >>> logits.shape, states[0][0].shape
    ((5, 2, 10), (1, 2, 8))
    >>> dx, dhx = model.backward(tape, np.ones_like(logits))
    >>> dx is None, sorted(model.params)[:2]
    (True, ['0.weight', '1.bias_hh_l0'])
    """

    def __init__(self, layers):
        layers = list(layers)
        if not layers:
            raise ValueError("layers must hold at least one layer, got an empty sequence")
        for index, layer in enumerate(layers):
            if not isinstance(layer, _LAYER_TYPES):
                raise TypeError(f"layers[{index}] must be a RNN, LSTM, GRU, Linear, Embedding "
                                f"or Dropout layer, got {describe(layer)}")
        dtypes = {layer.dtype for layer in layers if hasattr(layer, "dtype")}
        if len(dtypes) > 1:
            raise TypeError("layers must share one dtype, got "
                            + ", ".join(f"layers[{i}] {getattr(layer, 'dtype', None)}"
                                        for i, layer in enumerate(layers)
                                        if hasattr(layer, "dtype")))
        self.layers = layers
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        self.device = _common_device(layers)
        layout = [(f"{index}.{name}", value.shape) for index, layer in enumerate(layers)
                  for name, value in layer.params.items()]
        self._store = ParameterStore(layout, self.dtype)
        if self.device == "cuda":
            self._store = self._store.to_device()
        offset = 0
        for layer in layers:
            size = sum(value.size for value in layer.params.values())
            if size:
                layer._move_parameters(self._store.flat_params[offset:offset + size],
                                       self._store.flat_grads[offset:offset + size])
            offset += size

    def _recurrent(self):
        return [layer for layer in self.layers if isinstance(layer, RecurrentLayer)]

    def _check_states(self, name, states):
        count = len(self._recurrent())
        if states is None:
            return [None] * count
        if not isinstance(states, (list, tuple)) or len(states) != count:
            raise ValueError(f"{name} must be a list with one state per recurrent layer "
                             f"({count}), got {describe(states)}")
        return list(states)

    def _upload(self, name, value):
        """``(value, host)``: a CUDA model's host input uploaded once, and whether it came
        from the host. Float arrays are checked as the layers check them; integer ``x``
        (token ids) goes up as it is, for the first layer to range-check. GPU arrays,
        None and a CPU model's input pass through."""
        if self.device != "cuda" or value is None or is_device_array(value):
            return value, False
        from ..kernels.cuda._arrays import upload
        if name == "x" and np.dtype(getattr(value, "dtype", float)).kind in "iu":
            return upload(np.asarray(value)), True
        return upload(as_float_array(name, value, self.dtype)), True

    def _to_host(self, value):
        """Outputs (arrays, tuples or lists of them, None) copied to the host."""
        if isinstance(value, (tuple, list)):
            return type(value)(self._to_host(part) for part in value)
        return value if value is None or isinstance(value, np.ndarray) else value.copy_to_host()

    def __call__(self, x, hx=None, lengths=None, *, check_finite=False):
        """Inference: returns ``(y, states)``; arguments as :meth:`forward`."""
        self._check_finite_inputs(check_finite, x=x, hx=hx)
        states = iter(self._check_states("hx", hx))
        x, host_input = self._upload("x", x)
        finals = []
        for layer in self.layers:
            if isinstance(layer, RecurrentLayer):
                x, state = layer(x, next(states), lengths)
                finals.append(state)
            else:
                x = layer(x)
        return (self._to_host(x), self._to_host(finals)) if host_input else (x, finals)

    def forward(self, x, hx=None, lengths=None, *, check_finite=False):
        """Training forward. Returns ``(y, states, tape)``; ``states`` has one entry
        per recurrent layer (``h_n``, or ``(h_n, c_n)`` for an LSTM).
        ``check_finite=True`` raises ``FloatingPointError`` if ``x`` or ``hx``
        holds a NaN or an infinity."""
        self._check_finite_inputs(check_finite, x=x, hx=hx)
        states = iter(self._check_states("hx", hx))
        x, host_input = self._upload("x", x)
        finals, tapes = [], SequentialTape(host_input=host_input, owner=self)
        for layer in self.layers:
            if isinstance(layer, RecurrentLayer):
                x, state, tape = layer.forward(x, next(states), lengths)
                finals.append(state)
            else:
                x, tape = layer.forward(x)
            tapes.append(tape)
        if host_input:
            x, finals = self._to_host(x), self._to_host(finals)
        return x, finals, tapes

    @staticmethod
    def _check_finite_inputs(check_finite, **arrays):
        if check_bool("check_finite", check_finite):
            for name, value in arrays.items():
                check_finite_values(name, value)

    def backward(self, tape, dy, dstates=None, *, error_clip=None, error_norms=None,
                 check_finite=False, input_grad=True):
        """Add every layer's parameter gradients; return ``(dx, dhx)``.

        ``dy`` None means a zero output gradient (only the states' gradients
        flow: truncated BPTT's earlier chunks). ``dstates`` are gradients of the
        final states (None: zero); ``dhx`` the
        gradients of ``hx``, one per recurrent layer. ``dx`` is None when the
        first layer is an :class:`~fastrnn.Embedding` or takes token ids.
        ``error_clip`` and ``error_norms`` (a list with one array or None per
        recurrent layer) go to each recurrent layer's
        :meth:`~fastrnn.nn.recurrent.RecurrentLayer.backward`.
        ``check_finite=True`` raises ``FloatingPointError`` if ``dy`` or
        ``dstates`` holds a NaN or an infinity. ``input_grad=False`` skips the
        input gradient of a recurrent first layer (``dx`` is then None): the
        training loops pass it, since nothing needs the data's gradient.
        """
        if (not isinstance(tape, SequentialTape) or len(tape) != len(self.layers)
                or getattr(tape, "owner", None) is not self):
            raise TypeError("tape must be the tape returned by this Sequential's forward(), "
                            f"got {describe(tape)}")
        self._check_finite_inputs(check_finite, dy=dy, dstates=dstates)
        dstates = self._check_states("dstates", dstates)
        dy, _ = self._upload("dy", dy)
        norms = self._check_states("error_norms", error_norms)
        input_grad = check_bool("input_grad", input_grad)
        dhx = []
        first = self.layers[0]
        for layer, layer_tape in zip(reversed(self.layers), reversed(tape)):
            if dy is None and not isinstance(layer, RecurrentLayer):
                continue  # zero output gradient: nothing to add above the top recurrent layer
            if isinstance(layer, RecurrentLayer):
                dy, dh0 = layer.backward(layer_tape, dy, dstates.pop(), error_clip=error_clip,
                                         error_norms=norms.pop(),
                                         input_grad=input_grad or layer is not first)
                dhx.append(dh0)
            else:
                dy = layer.backward(layer_tape, dy)
        if getattr(tape, "host_input", False):
            return self._to_host(dy), self._to_host(dhx[::-1])
        return dy, dhx[::-1]

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"


def _common_device(layers):
    """The one device of the layers that have one ("cpu" when none has).

    Raises
    ------
    ValueError
        When the layers are on different devices, naming each.
    """
    devices = {index: layer.device for index, layer in enumerate(layers)
               if hasattr(layer, "device")}
    if len(set(devices.values())) > 1:
        first = next(iter(devices))
        raise ValueError(
            f"layers must all be on one device: expected device={devices[first]!r} (that of "
            f"layers[{first}], {type(layers[first]).__name__}), got "
            + ", ".join(f"layers[{index}] ({type(layers[index]).__name__}) on {device!r}"
                        for index, device in devices.items() if device != devices[first])
            + "; build every layer with the same device=")
    return next(iter(devices.values()), "cpu")
