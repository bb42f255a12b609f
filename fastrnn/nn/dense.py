"""Layers around the recurrent ones: :class:`Linear`, :class:`Embedding`, :class:`Dropout`.

They follow the recurrent layers' conventions: ``layer(x)`` for inference,
``forward(x) -> (y, tape)`` and ``backward(tape, dy) -> dx`` (gradients added
to :attr:`grads`), parameters as views into one flat buffer.
"""

import numpy as np

from .. import config
from .._validation import check_finite as check_finite_values
from .._validation import (check_bool, check_dropout, check_int, describe, is_device_array,
                           resolve_dtype)
from ..device import get_backend, resolve_device
from ._arrays import HOST
from ._params import HasParameters, ParameterStore


def _check_features(name, array, size):
    if array.ndim < 1 or tuple(array.shape)[-1] != size:
        raise ValueError(f"{name} must have shape (..., {size}), got {array.shape}")


def _own_tape(layer, tape):
    """``tape`` when it came from ``layer``'s own :meth:`forward`; else a TypeError."""
    if not isinstance(tape, dict) or tape.get("owner") is not layer:
        raise TypeError(f"tape must be the tape returned by this layer's forward(), got "
                        f"{describe(tape)}" + (" from another layer" if isinstance(tape, dict)
                                               else ""))
    return tape


class Linear(HasParameters):
    r"""Fully connected layer, :math:`y = x W^\top + b` (``torch.nn.Linear``).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    dtype : numpy.float32 or numpy.float64, default numpy.float32
    device : {"auto", "cpu", "cuda"}, default "auto"
        With ``"cuda"`` the parameters and gradients live on the GPU, and
        ``forward``/``backward`` take NumPy or GPU arrays: GPU arrays in give
        GPU arrays out, NumPy arrays NumPy arrays.
    seed : int, optional
        Seed of the initialisation U(-1/sqrt(in_features), 1/sqrt(in_features)),
        PyTorch's.

    Attributes
    ----------
    params : dict
        ``weight`` of shape (out_features, in_features) and ``bias`` (out_features,).

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> layer = fr.Linear(3, 2, seed=0)
    >>> y, tape = layer.forward(np.ones((4, 5, 3), np.float32))
    >>> y.shape, layer.backward(tape, np.ones_like(y)).shape
    ((4, 5, 2), (4, 5, 3))
    """

    def __init__(self, in_features, out_features, *, bias=True, dtype=None, device="auto",
                 seed=None):
        self.in_features = check_int("in_features", in_features, 1)
        self.out_features = check_int("out_features", out_features, 1)
        self.bias = check_bool("bias", bias)
        self.dtype = resolve_dtype(config.DEFAULT_DTYPE if dtype is None else dtype)
        self.device = resolve_device(device)
        if seed is not None:
            check_int("seed", seed, 0)
        layout = [("weight", (self.out_features, self.in_features))]
        if self.bias:
            layout.append(("bias", (self.out_features,)))
        self._store = ParameterStore(layout, self.dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.in_features)
        for value in self._store.params.values():
            value[...] = rng.uniform(-bound, bound, size=value.shape)
        backend = get_backend(self.device)
        self._kernels = backend.DENSE
        self._arrays = HOST
        if self.device == "cuda":
            self._store = self._store.to_device()
            self._arrays = backend.ARRAYS

    def __call__(self, x, *, check_finite=False):
        """Inference: ``y`` of shape (..., out_features)."""
        return self.forward(x, check_finite=check_finite)[0]

    def forward(self, x, *, check_finite=False):
        """``y = x W^T + b`` for ``x`` of shape (..., in_features).

        ``check_finite=True`` raises ``FloatingPointError`` if ``x`` holds a
        NaN or an infinity (otherwise they propagate as in IEEE arithmetic).

        Returns
        -------
        y : ndarray, shape (..., out_features)
        tape : dict
            What :meth:`backward` needs (the input rows).
        """
        if check_bool("check_finite", check_finite):
            check_finite_values("x", x)
        on_device = is_device_array(x)
        x = self._arrays.float_input("x", x, self.dtype)
        _check_features("x", x, self.in_features)
        shape = tuple(x.shape)
        rows = self._arrays.contiguous(x.reshape(-1 if self._arrays is HOST else
                                                 x.size // self.in_features, self.in_features))
        y = self._kernels[0](self.params["weight"], self.params.get("bias"), rows)
        y = y.reshape(shape[:-1] + (self.out_features,))
        if self._arrays is not HOST and not on_device:
            y = self._arrays.to_host(y)
        return y, dict(owner=self, x=rows, shape=shape, on_device=on_device)

    def backward(self, tape, dy, *, check_finite=False):
        """Add the parameter gradients of ``sum(y * dy)`` to :attr:`grads`; return ``dx``.

        ``check_finite=True`` raises ``FloatingPointError`` if ``dy`` holds a
        NaN or an infinity.
        """
        tape = _own_tape(self, tape)
        if check_bool("check_finite", check_finite):
            check_finite_values("dy", dy)
        shape = tape["shape"]
        dy = self._arrays.float_input("dy", dy, self.dtype)
        if tuple(dy.shape) != shape[:-1] + (self.out_features,):
            raise ValueError(f"dy must have shape {shape[:-1] + (self.out_features,)} (the "
                             f"output's), got {tuple(dy.shape)}")
        dy_rows = self._arrays.contiguous(dy.reshape(-1 if self._arrays is HOST else
                                                     dy.size // self.out_features,
                                                     self.out_features))
        dx = self._kernels[1](self.params["weight"], self.grads["weight"],
                              self.grads.get("bias"), tape["x"], dy_rows).reshape(shape)
        if self._arrays is not HOST and not tape.get("on_device", False):
            dx = self._arrays.to_host(dx)
        return dx

    def __repr__(self):
        return (f"Linear({self.in_features}, {self.out_features}, bias={self.bias}, "
                f"dtype={self.dtype.name})")


class Embedding(HasParameters):
    """Lookup table of ``num_embeddings`` rows of size ``embedding_dim`` (``torch.nn.Embedding``).

    ``forward`` gathers rows; ``backward`` adds each output gradient row to the
    gradient of the row it came from, in index order (deterministic). The
    initialisation is N(0, 1), PyTorch's.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
    dtype : numpy.float32 or numpy.float64, default numpy.float32
    device : {"auto", "cpu", "cuda"}, default "auto"
        With ``"cuda"`` the table and its gradient live on the GPU; indices
        may be NumPy or GPU integer arrays (read back for the range check),
        and GPU indices give GPU rows, NumPy indices NumPy rows.
    seed : int, optional

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> table = fr.Embedding(10, 4, seed=0)
    >>> table(np.array([[1, 2], [3, 1]])).shape
    (2, 2, 4)
    """

    def __init__(self, num_embeddings, embedding_dim, *, dtype=None, device="auto", seed=None):
        self.num_embeddings = check_int("num_embeddings", num_embeddings, 1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, 1)
        self.dtype = resolve_dtype(config.DEFAULT_DTYPE if dtype is None else dtype)
        self.device = resolve_device(device)
        if seed is not None:
            check_int("seed", seed, 0)
        self._store = ParameterStore([("weight", (self.num_embeddings, self.embedding_dim))],
                                     self.dtype)
        self.params["weight"][...] = np.random.default_rng(seed).standard_normal(
            self.params["weight"].shape)
        self._arrays = HOST
        if self.device == "cuda":
            backend = get_backend(self.device)
            self._kernels = backend.EMBEDDING
            self._store = self._store.to_device()
            self._arrays = backend.ARRAYS

    def _check_indices(self, indices):
        if is_device_array(indices) and self._arrays is not HOST:
            indices = self._arrays.to_host(self._arrays.native(indices))  # for the range check
        elif is_device_array(indices):
            raise TypeError(f"indices must be a numpy array, got a GPU array "
                            f"({type(indices).__name__}) of shape {tuple(indices.shape)}; this "
                            "runs on the host (device='cpu'): copy it with fastrnn.to_numpy(), "
                            "or build the layer with device='cuda'")
        array = np.asarray(indices)
        if array.dtype.kind not in "iu":
            raise TypeError(f"indices must be an integer array, got {describe(indices)}")
        if array.size and (array.min() < 0 or array.max() >= self.num_embeddings):
            raise ValueError(f"indices must lie in [0, {self.num_embeddings}), got values from "
                             f"{array.min()} to {array.max()}")
        return array

    def __call__(self, indices):
        """Inference: the rows, shape ``indices.shape + (embedding_dim,)``."""
        return self.forward(indices)[0]

    def forward(self, indices):
        """Gather rows. Returns ``(y, tape)``."""
        on_device = is_device_array(indices)
        indices = self._check_indices(indices)
        tape = dict(owner=self, indices=indices, on_device=on_device)
        if self._arrays is HOST:
            return self.params["weight"][indices], tape
        ids = self._arrays.native(np.ascontiguousarray(indices.reshape(-1), dtype=np.int64))
        rows = self._kernels[0](self.params["weight"], ids)
        y = rows.reshape(indices.shape + (self.embedding_dim,))
        return (y if on_device else self._arrays.to_host(y)), tape

    def backward(self, tape, dy):
        """Scatter-add ``dy`` into the rows' gradients. Returns None (indices have no gradient)."""
        indices = _own_tape(self, tape)["indices"]
        dy = self._arrays.float_input("dy", dy, self.dtype)
        expected = indices.shape + (self.embedding_dim,)
        if tuple(dy.shape) != expected:
            raise ValueError(f"dy must have shape {expected} (the output's), "
                             f"got {tuple(dy.shape)}")
        if self._arrays is HOST:
            np.add.at(self.grads["weight"], indices.reshape(-1),
                      dy.reshape(-1, self.embedding_dim))
        else:
            self._kernels[1](self.grads["weight"], indices.reshape(-1),
                             dy.reshape(indices.size, self.embedding_dim))
        return None

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype.name})"


class Dropout:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1/(1-p).

    Only :meth:`forward` (training) drops; ``layer(x)`` (inference) is the identity.
    The mask comes from a generator seeded by ``seed`` and is kept in the tape.
    GPU arrays (in a ``device="cuda"`` :class:`~fastrnn.Sequential`) are
    multiplied on the GPU by the same mask, drawn on the host and uploaded.

    Parameters
    ----------
    p : float in [0, 1)
    seed : int, optional
    """

    def __init__(self, p=0.5, *, seed=None):
        self.p = check_dropout(p)
        self._rng = np.random.default_rng(seed)

    @property
    def params(self):
        """Dropout has no parameters: an empty dict."""
        return {}

    grads = params

    def __call__(self, x):
        return x

    def forward(self, x):
        """Returns ``(y, tape)``: ``x`` times the scaled mask."""
        on_device = is_device_array(x)
        dtype = np.dtype(x.dtype) if on_device else np.asarray(x).dtype
        if dtype not in config.SUPPORTED_DTYPES:
            raise TypeError(f"x must be a float32 or float64 array, got {describe(x)}")
        tape = dict(owner=self, mask=None, shape=tuple(x.shape), dtype=dtype)
        if self.p == 0.0:
            return x, tape
        keep = self._rng.random(tuple(x.shape)) >= self.p
        tape["mask"] = keep.astype(dtype) / dtype.type(1.0 - self.p)
        return self._times(x, tape["mask"]), tape

    def backward(self, tape, dy):
        """``dy`` times the forward's mask; ``dy`` must have the output's shape and dtype."""
        tape = _own_tape(self, tape)
        on_device = is_device_array(dy)
        if not on_device and not isinstance(dy, np.ndarray):
            raise TypeError(f"dy must be an array of {tape['dtype']} shaped like the output, "
                            f"got {describe(dy)}")
        if np.dtype(dy.dtype) != tape["dtype"]:
            raise TypeError(f"dy must have dtype {tape['dtype']} (the output's), got "
                            f"{np.dtype(dy.dtype)}")
        if tuple(dy.shape) != tape["shape"]:
            raise ValueError(f"dy must have shape {tape['shape']} (the output's), got "
                             f"{tuple(dy.shape)}")
        return dy if tape["mask"] is None else self._times(dy, tape["mask"])

    @staticmethod
    def _times(x, mask):
        """``x * mask`` as a new array: on the GPU when ``x`` is a GPU array."""
        if not is_device_array(x):
            return np.asarray(x) * mask
        from ..kernels.cuda._arrays import adopt, copy, multiply
        out = copy(adopt(x))
        multiply(out, mask)
        return out

    def __repr__(self):
        return f"Dropout(p={self.p})"
