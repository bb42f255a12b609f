"""Multi-layer, optionally bidirectional recurrent layers over whole sequences.

:class:`RecurrentLayer` holds the parameters (PyTorch's names, shapes and
order), checks every input, and runs the layers and directions in turn, each
through one backend scan. The cell-specific classes in :mod:`fastrnn.nn.layers`
only describe their cell.

Between scans the layer works on arrays through ``self._arrays``: NumPy
(:data:`fastrnn.nn._arrays.HOST`) on the CPU, device arrays
(:data:`fastrnn.kernels.cuda._arrays.ARRAYS`) for ``device="cuda"``, whose
parameters and gradients live on the GPU. A CUDA layer takes NumPy or GPU
arrays; its outputs are GPU arrays when ``x`` was one, else NumPy arrays.
"""

import numpy as np

from .. import config
from .._spec import CellSpec
from .._validation import check_finite as _check_finite
from .._validation import (check_bool, check_dropout, check_int, check_lengths, check_positive,
                           check_shape, describe, is_device_array, resolve_dtype)
from ..device import get_backend, resolve_device
from ._arrays import HOST
from ._params import HasParameters, ParameterStore


#: Parameter names without their ``_l{k}[_reverse]`` suffix.
_SHORT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_ch")


def _is_token_array(x):
    """Integer arrays (of at most two axes) hold token ids; other arrays are features."""
    dtype = getattr(x, "dtype", None)
    return dtype is not None and np.dtype(dtype).kind in "iu" and np.ndim(x) <= 2


class Tape:
    """What :meth:`RecurrentLayer.backward` needs from one :meth:`~RecurrentLayer.forward`.

    Attributes
    ----------
    layers : list of list of dict
        Per layer, per direction, the backend's tape (inputs, gate activations,
        states).
    masks : list of ndarray or None
        Dropout masks applied to each layer's output (None: no dropout).
    lengths : ndarray of int64, shape (B,)
    steps, batch : int
    unbatched : bool
        The input was 2-D; gradients are returned 2-D too.
    tokens : bool
        The input was token ids (one-hot); there is no input gradient.
    on_device : bool
        The input was a GPU array: :meth:`~RecurrentLayer.backward` returns GPU
        arrays too.
    """

    __slots__ = ("owner", "layers", "masks", "lengths", "steps", "batch", "unbatched", "tokens",
                 "on_device")

    def __init__(self, owner, layers, masks, lengths, steps, batch, unbatched, tokens,
                 on_device=False):
        self.owner = owner
        self.layers = layers
        self.masks = masks
        self.lengths = lengths
        self.steps = steps
        self.batch = batch
        self.unbatched = unbatched
        self.tokens = tokens
        self.on_device = on_device


def _check_error_clip(error_clip):
    """``error_clip`` as a float, or None (no per-step error clipping)."""
    return None if error_clip is None else check_positive("error_clip", error_clip)


class RecurrentLayer(HasParameters):
    """Shared machinery of :class:`~fastrnn.RNN`, :class:`~fastrnn.LSTM`, :class:`~fastrnn.GRU`.

    Subclasses call ``__init__`` with their :class:`~fastrnn._spec.CellSpec`
    options; see those classes for the parameters.
    """

    _kind = None
    _state_names = ("hx",)

    def __init__(self, input_size, hidden_size, num_layers, *, bias, batch_first, dropout,
                 bidirectional, dtype, device, seed, **cell_options):
        self.input_size = check_int("input_size", input_size, 1)
        self.hidden_size = check_int("hidden_size", hidden_size, 1)
        self.num_layers = check_int("num_layers", num_layers, 1)
        self.bias = check_bool("bias", bias)
        self.batch_first = check_bool("batch_first", batch_first)
        self.dropout = check_dropout(dropout)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.dtype = resolve_dtype(config.DEFAULT_DTYPE if dtype is None else dtype)
        self.device = resolve_device(device)
        if seed is not None:
            check_int("seed", seed, 0)
        self.spec = CellSpec(kind=self._kind, hidden_size=self.hidden_size, bias=self.bias,
                             **cell_options)
        self.num_directions = 2 if self.bidirectional else 1
        init_seed, dropout_seed = np.random.SeedSequence(seed).spawn(2)
        self._dropout_rng = np.random.default_rng(dropout_seed)
        self._store = ParameterStore(self._layout(), self.dtype)
        self._reset_parameters(np.random.default_rng(init_seed))
        self._backend = None
        self._arrays = HOST
        if self.device == "cuda":   # parameters drawn on the host (same values), then moved
            self._store = self._store.to_device()
            self._arrays = self._ensure_backend().ARRAYS
        self._weights, self._grad_views = self._views_by_direction()

    # ----------------------------------------------------------------- parameters
    def _suffixes(self):
        """``(layer, direction, suffix)`` for every layer/direction, torch's order."""
        return [(layer, direction, f"_l{layer}" + ("_reverse" if direction else ""))
                for layer in range(self.num_layers) for direction in range(self.num_directions)]

    def _layout(self):
        """Parameter names and shapes, exactly as ``torch.nn.RNN/LSTM/GRU`` lay them out."""
        spec = self.spec
        gates = spec.num_gates * spec.hidden_size
        out = spec.output_size
        layout = []
        for layer, _, suffix in self._suffixes():
            in_size = self.input_size if layer == 0 else out * self.num_directions
            layout += [(f"weight_ih{suffix}", (gates, in_size)),
                       (f"weight_hh{suffix}", (gates, out))]
            if spec.bias:
                layout += [(f"bias_ih{suffix}", (gates,)), (f"bias_hh{suffix}", (gates,))]
            if spec.proj_size:
                layout.append((f"weight_hr{suffix}", (out, spec.hidden_size)))
            if spec.peephole:
                layout.append((f"weight_ch{suffix}", (2 if spec.coupled else 3, spec.hidden_size)))
        return layout

    def _reset_parameters(self, rng):
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as PyTorch does."""
        bound = 1.0 / np.sqrt(self.hidden_size)
        for value in self._store.params.values():
            value[...] = rng.uniform(-bound, bound, size=value.shape)

    def _parameters_moved(self):
        self._weights, self._grad_views = self._views_by_direction()

    def _views_by_direction(self):
        """Per (layer, direction): the parameter and gradient views under short names."""
        weights, grads = [], []
        for _, _, suffix in self._suffixes():
            names = [short for short in _SHORT_NAMES if short + suffix in self._store.params]
            weights.append({short: self._store.params[short + suffix] for short in names})
            grads.append({short: self._store.grads[short + suffix] for short in names})
        return weights, grads

    # ------------------------------------------------------------------- running
    def __call__(self, x, hx=None, lengths=None, *, check_finite=False):
        """Inference: run the layer and keep no tape. Returns ``(y, h_n)``.

        Arguments as :meth:`forward`.
        """
        y, h_n, _ = self._run(x, hx, lengths, keep_tape=False, check_finite=check_finite)
        return y, h_n

    def forward(self, x, hx=None, lengths=None, *, check_finite=False):
        """Run the layer and keep what :meth:`backward` needs.

        Parameters
        ----------
        x : ndarray
            Input sequence of the layer's dtype, shape (T, B, input_size);
            (B, T, input_size) if ``batch_first``; (T, input_size) unbatched.
            Or token ids, an integer array of shape (T, B) ((B, T) batch-first,
            (T,) unbatched) with values in ``[0, input_size)``: one-hot input,
            whose input projection is a gather of columns of ``weight_ih_l0``
            (no one-hot matrix is built; no input gradient).
        hx : ndarray of shape (num_layers * D, B, P), or None
            Initial hidden state (zeros when None); D is 2 when bidirectional,
            P the output (projection or hidden) size. For the LSTM, the pair
            ``(h0, c0)``, ``c0`` of shape (num_layers * D, B, hidden_size).
            Without the batch axis for unbatched input.
        lengths : sequence of int of length B, or None
            Valid steps of each sequence; outputs past them are zero and the
            final state is the state at the last valid step.
        check_finite : bool
            Raise ``FloatingPointError`` if ``x`` or ``hx`` holds a NaN or an
            infinity (naming the argument and the first such element). Off by
            default: non-finite values then propagate as in IEEE arithmetic,
            within their own sequence.

        Returns
        -------
        y : ndarray, shape (T, B, D * P) (batch-first or unbatched as ``x``)
        h_n : ndarray or tuple of ndarray
            Final states, shaped as ``hx``.
        tape : Tape
            What :meth:`backward` needs. It keeps its own copy of a host ``x``
            and of ``lengths``, so the caller may change them before the
            backward (a GPU ``x`` is used in place and must not change), and
            the steps past each length are zeros there: whatever the padding
            holds, NaN included, does not reach the gradients.
        """
        return self._run(x, hx, lengths, keep_tape=True, check_finite=check_finite)

    def _ensure_backend(self):
        if self._backend is None:
            self._backend = get_backend(self.device)
        return self._backend

    def _run(self, x, hx, lengths, keep_tape, check_finite=False):
        if check_bool("check_finite", check_finite):
            _check_finite("x", x)
            _check_finite("hx", hx)
        on_device = is_device_array(x)
        callers = x
        x, unbatched = self._check_input(x)
        arrays = self._arrays
        steps, batch, _ = x.shape
        every_step = lengths is None   # no lengths given: every sequence runs all steps
        lengths = check_lengths(lengths, steps, batch)
        if keep_tape:
            x = arrays.tape_input(x, lengths, callers)
        state0 = self._check_state("hx", hx, batch, unbatched)
        scan = self._ensure_backend().SCANS[self._kind][0]
        out = self.spec.output_size
        state_n = [arrays.empty_like(s) for s in state0]
        tapes, masks = [], []
        layer_input = x
        # the scans write every valid step of y: zeros are needed only past the lengths
        # (on the host; a (100, 64, 256) float32 fill is 6.5 MB written for nothing)
        # (``min``: 1.2 against 2.8 us for ``np.all(lengths == steps)``, per call)
        if arrays is HOST and (every_step or int(lengths.min()) == steps):
            output = arrays.empty
        else:
            output = arrays.zeros
        for layer in range(self.num_layers):
            y = output((steps, batch, self.num_directions * out), self.dtype)
            tapes.append([])
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                initial = tuple(arrays.row(s, index) for s in state0)
                final, tape = scan(self.spec, self._weights[index], layer_input, initial, lengths,
                                   bool(direction), keep_tape, y, direction * out)
                for target, value in zip(state_n, final):
                    arrays.put(target, index, value)
                tapes[-1].append(tape)
            mask = None
            if keep_tape and self.dropout > 0.0 and layer < self.num_layers - 1:
                mask = arrays.native(self._dropout_mask(y.shape))
                arrays.multiply(y, mask)
            masks.append(mask)
            layer_input = y
        result = self._to_user_layout(layer_input, unbatched)
        h_n = self._state_to_user(state_n, unbatched)
        if arrays is not HOST and not on_device:
            result, h_n = self._to_host(result), self._to_host(h_n)
        tape = (Tape(self, tapes, masks, lengths, steps, batch, unbatched,
                     np.dtype(x.dtype).kind == "i", on_device) if keep_tape else None)
        return result, h_n, tape

    def _to_host(self, value):
        """A result (an array or a tuple of them) copied to the host."""
        if isinstance(value, tuple):
            return tuple(self._arrays.to_host(part) for part in value)
        return self._arrays.to_host(value)

    def backward(self, tape, dy, dh_n=None, *, error_clip=None, error_norms=None,
                 check_finite=False, input_grad=True):
        """Backpropagate through a :meth:`forward`; accumulate parameter gradients.

        Parameters
        ----------
        tape : Tape
            From :meth:`forward` of this layer.
        dy : ndarray or None
            Gradient of the loss with respect to ``y``, shaped like ``y``; None
            means zero.
        dh_n : ndarray, tuple or None
            Gradient with respect to ``h_n``, shaped like it (for the LSTM a
            pair ``(dh_n, dc_n)``, either of which may be None); None means zero.
        error_clip : float > 0 or None
            Per-step error clipping: in every layer and direction, at every
            step, the gradient reaching ``h_t`` of each sequence (from the
            output and from step ``t + 1``) is scaled down to 2-norm
            ``error_clip`` wherever it is longer, before it flows on. Bounds
            exploding error flow where it starts, not only globally. It acts
            on the gradient of the loss as given: a loss averaged over the
            batch has per-sequence errors ``1/B`` as large.
        error_norms : ndarray of float64, shape (num_layers * D, T, B), or None
            Filled with the 2-norm of that gradient (before clipping) at every
            step of every sequence, per layer and direction (torch's order);
            padding steps hold 0. The exploding/vanishing-gradient picture;
            costs one pass over the state per step, nothing when None.
        check_finite : bool
            Raise ``FloatingPointError`` if ``dy`` or ``dh_n`` holds a NaN or
            an infinity (naming the argument and the first such element).
        input_grad : bool
            Compute ``dx`` (default). False skips the first layer's input
            gradient, a GEMM as large as a weight gradient, when nothing needs
            it (the layer reads the data), as torch does for an input without
            ``requires_grad``; ``dx`` is then None.

        Returns
        -------
        dx : ndarray or None
            Gradient with respect to ``x``, shaped like ``x``; None for token
            input or ``input_grad=False``. GPU arrays (this and ``dhx``) when
            the forward's ``x`` was one.
        dhx : ndarray or tuple of ndarray
            Gradient with respect to ``hx``, shaped like ``h_n``.
        """
        if not isinstance(tape, Tape) or tape.owner is not self:
            raise TypeError("tape must be the Tape returned by this layer's forward(), "
                            f"got {describe(tape)}")
        if check_bool("check_finite", check_finite):
            _check_finite("dy", dy)
            _check_finite("dh_n", dh_n)
        input_grad = check_bool("input_grad", input_grad) and not tape.tokens
        steps, batch, unbatched = tape.steps, tape.batch, tape.unbatched
        out = self.spec.output_size
        d_out = self._check_output_grad(dy, steps, batch, unbatched)
        dstate_n = self._check_state("dh_n", dh_n, batch, unbatched)
        error_clip = _check_error_clip(error_clip)
        error_norms = self._check_error_norms(error_norms, steps, batch)
        scan = self._ensure_backend().SCANS[self._kind][1]
        arrays = self._arrays
        dstate0 = [arrays.empty_like(s) for s in dstate_n]
        for layer in reversed(range(self.num_layers)):
            in_size = self.input_size if layer == 0 else out * self.num_directions
            dx = (None if layer == 0 and not input_grad  # (never wanted for token input)
                  else arrays.zeros((steps, batch, in_size), self.dtype))
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                final = tuple(arrays.row(s, index) for s in dstate_n)
                initial = scan(self.spec, self._weights[index], self._grad_views[index],
                               tape.layers[layer][direction], d_out, direction * out, final, dx,
                               error_clip, None if error_norms is None else error_norms[index])
                for target, value in zip(dstate0, initial):
                    arrays.put(target, index, value)
            if layer > 0 and tape.masks[layer - 1] is not None:
                arrays.multiply(dx, tape.masks[layer - 1])
            d_out = dx
        dx = self._to_user_layout(d_out, unbatched) if input_grad else None
        dhx = self._state_to_user(dstate0, unbatched)
        if arrays is not HOST and not tape.on_device:
            dx = None if dx is None else self._to_host(dx)
            dhx = self._to_host(dhx)
        return dx, dhx

    def _check_error_norms(self, error_norms, steps, batch):
        if error_norms is None:
            return None
        shape = (self.num_layers * self.num_directions, steps, batch)
        if not isinstance(error_norms, np.ndarray) or error_norms.dtype != np.float64:
            raise TypeError(f"error_norms must be a float64 ndarray of shape {shape}, "
                            f"got {describe(error_norms)}")
        check_shape("error_norms", error_norms, shape)
        if not error_norms.flags.c_contiguous:
            raise ValueError("error_norms must be C-contiguous (it is written in place)")
        error_norms[...] = 0.0
        return error_norms

    # ------------------------------------------------------------ input checking
    def _check_input(self, x):
        """Input as a C-contiguous (T, B, I) array; also whether it was unbatched.

        Integer input holds token ids (one-hot input, see :meth:`forward`) and
        comes back as a (T, B, 1) int64 array.
        """
        if _is_token_array(x):
            if is_device_array(x) and self._arrays is not HOST:
                x = self._arrays.to_host(self._arrays.native(x))   # read back for the range check
            x, unbatched = self._check_tokens(x)
            return self._arrays.native(x), unbatched
        x = self._arrays.float_input("x", x, self.dtype)
        if x.ndim not in (2, 3):
            raise ValueError("x must be 3-D (T, B, input_size)"
                             + (" batch-first (B, T, input_size)" if self.batch_first else "")
                             + f" or 2-D unbatched (T, input_size), got shape {x.shape}")
        if tuple(x.shape)[-1] != self.input_size:   # tuple(): a simulated GPU array's shape
            # refuses negative indices
            raise ValueError(f"x must have input_size={self.input_size} features in its last "
                             f"axis, got shape {x.shape}")
        unbatched = x.ndim == 2
        if 0 in x.shape[:-1]:
            raise ValueError(f"x must have at least one time step and one batch entry, "
                             f"got shape {x.shape}")
        if unbatched:
            x = self._arrays.unsqueeze1(x)
        elif self.batch_first:
            x = self._arrays.swap01(x)
        return self._arrays.contiguous(x), unbatched

    def _check_tokens(self, x):
        """Token ids (T, B) (batch-first (B, T); unbatched (T,)) as (T, B, 1) int64."""
        if is_device_array(x):
            raise TypeError(f"x must be a numpy array of token ids, got a GPU array "
                            f"({type(x).__name__}) of shape {tuple(x.shape)}; this layer runs on "
                            "the host (device='cpu'): copy it with fastrnn.to_numpy(), or build "
                            "the layer with device='cuda'")
        x = np.asarray(x)
        if x.ndim not in (1, 2):
            raise ValueError("x holding token ids (an integer array) must be 2-D (T, B)"
                             + (" batch-first (B, T)" if self.batch_first else "")
                             + f" or 1-D unbatched (T,), got shape {x.shape}")
        if x.size == 0:
            raise ValueError(f"x must have at least one time step and one batch entry, "
                             f"got shape {x.shape}")
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= self.input_size:
            raise ValueError(f"x holds token ids, which must lie in [0, input_size="
                             f"{self.input_size}), got values from {low} to {high}")
        unbatched = x.ndim == 1
        if unbatched:
            x = x[:, None]
        elif self.batch_first:
            x = x.T
        return np.ascontiguousarray(x, dtype=np.int64)[:, :, None], unbatched

    def _state_shapes(self, batch):
        """Shapes of the state arrays (h, and c for the LSTM), batched."""
        rows = self.num_layers * self.num_directions
        shapes = [(rows, batch, self.spec.output_size)]
        if self.spec.has_cell_state:
            shapes.append((rows, batch, self.hidden_size))
        return shapes

    def _check_state(self, name, value, batch, unbatched):
        """A state (``hx``) or state gradient (``dh_n``) as batched arrays; None is zeros."""
        shapes = self._state_shapes(batch)
        parts = self._split_state(name, value, len(shapes))
        checked = []
        for index, (part, shape) in enumerate(zip(parts, shapes)):
            if part is None:
                checked.append(self._arrays.zeros(shape, self.dtype))
                continue
            part_name = f"{name}[{index}]" if len(shapes) > 1 else name
            part = self._arrays.float_input(part_name, part, self.dtype)
            check_shape(part_name, part, (shape[0], shape[2]) if unbatched else shape)
            checked.append(self._arrays.unsqueeze1(part) if unbatched else part)
        return checked

    def _split_state(self, name, value, count):
        """``value`` as a list of ``count`` parts (a pair for the LSTM)."""
        if count == 1:
            if isinstance(value, tuple):
                raise TypeError(f"{name} must be one array for the {type(self).__name__} (only "
                                f"the LSTM's state is a pair), got a tuple of {len(value)}")
            return [value]
        if value is None:
            return [None] * count
        if not isinstance(value, (tuple, list)) or len(value) != count:
            raise TypeError(f"{name} must be a pair (h, c) of arrays or None for the LSTM, "
                            f"got {describe(value)}")
        return list(value)

    def _check_output_grad(self, dy, steps, batch, unbatched):
        """``dy`` as a C-contiguous (T, B, D*P) array; None is zeros."""
        shape = (steps, batch, self.num_directions * self.spec.output_size)
        if dy is None:
            return self._arrays.zeros(shape, self.dtype)
        dy = self._arrays.float_input("dy", dy, self.dtype)
        check_shape("dy", dy, self._user_shape(shape, unbatched))
        if unbatched:
            return self._arrays.contiguous(self._arrays.unsqueeze1(dy))
        if self.batch_first:
            return self._arrays.swap01(dy)
        return self._arrays.contiguous(dy)

    def _user_shape(self, shape, unbatched):
        """The user-facing shape of an internal (T, B, F) array."""
        steps, batch, features = shape
        if unbatched:
            return (steps, features)
        return (batch, steps, features) if self.batch_first else shape

    def _to_user_layout(self, array, unbatched):
        """Internal (T, B, F) to the caller's layout (batch-first, unbatched)."""
        if unbatched:
            return self._arrays.squeeze1(array)
        if self.batch_first:
            return self._arrays.swap01(array)
        return array

    def _state_to_user(self, parts, unbatched):
        """Batched state arrays to the caller's form: a pair for the LSTM."""
        parts = [self._arrays.squeeze1(p) if unbatched else p for p in parts]
        return tuple(parts) if self.spec.has_cell_state else parts[0]

    def _dropout_mask(self, shape):
        """Inverted-dropout mask: 0 with probability ``dropout``, else ``1/(1-dropout)``."""
        keep = self._dropout_rng.random(shape) >= self.dropout
        return keep.astype(self.dtype) / self.dtype.type(1.0 - self.dropout)

    def __repr__(self):
        options = [f"{self.input_size}", f"{self.hidden_size}", f"num_layers={self.num_layers}"]
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):
            if getattr(self, name) != default:
                options.append(f"{name}={getattr(self, name)!r}")
        options.append(f"dtype={self.dtype}, device={self.device!r}")
        return f"{type(self).__name__}({', '.join(options)})"
