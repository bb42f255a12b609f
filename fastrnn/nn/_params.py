"""One flat parameter buffer and one flat gradient buffer per module.

Named parameters are views into the flat buffers, so optimizers, clipping and
checkpoints can each work on one array.
"""

from collections import namedtuple

import numpy as np

from .._validation import describe

LoadResult = namedtuple("LoadResult", ["missing_keys", "unexpected_keys"])


class ParameterStore:
    """Flat ``params``/``grads`` buffers with named views.

    Parameters
    ----------
    layout : list of (str, tuple)
        Parameter names and shapes, in order.
    dtype : numpy.dtype
    """

    def __init__(self, layout, dtype, flat_params=None, flat_grads=None):
        sizes = [int(np.prod(shape)) for _, shape in layout]
        if flat_params is None:
            flat_params = np.zeros(sum(sizes), dtype)
            flat_grads = np.zeros(sum(sizes), dtype)
        self.flat_params, self.flat_grads = flat_params, flat_grads
        self.params, self.grads = {}, {}
        offset = 0
        for (name, shape), size in zip(layout, sizes):
            self.params[name] = self.flat_params[offset:offset + size].reshape(shape)
            self.grads[name] = self.flat_grads[offset:offset + size].reshape(shape)
            offset += size

    @classmethod
    def renamed(cls, store, names):
        """A store over the same buffers with other names (``names``: new -> old)."""
        view = cls.__new__(cls)
        view.flat_params, view.flat_grads = store.flat_params, store.flat_grads
        view.params = {new: store.params[old] for new, old in names.items()}
        view.grads = {new: store.grads[old] for new, old in names.items()}
        return view

    def state_dict(self):
        """Copies of every parameter, by name (NumPy arrays, loadable into torch)."""
        return {name: value.copy() for name, value in self.params.items()}

    def load_state_dict(self, state, strict=True):
        """Copy parameters in from ``state`` (name -> array-like).

        Raises
        ------
        ValueError
            With ``strict``, on missing or unknown keys; always on a shape
            mismatch, naming the key.
        TypeError
            On a non-mapping, or a value that is not a real floating/integer array.
        """
        if not hasattr(state, "keys"):
            raise TypeError(f"state_dict must be a mapping of name to array, got {describe(state)}")
        missing = [name for name in self.params if name not in state]
        unexpected = [name for name in state if name not in self.params]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict(strict=True): missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        arrays = {}
        for name in self.params:
            if name not in state:
                continue
            array = np.asarray(state[name])
            if array.dtype.kind not in "fiu":
                raise TypeError(f"state_dict[{name!r}] must be a real numeric array, "
                                f"got dtype {array.dtype}")
            if array.shape != self.params[name].shape:
                raise ValueError(f"state_dict[{name!r}] must have shape "
                                 f"{self.params[name].shape}, got {array.shape}")
            arrays[name] = array
        for name, array in arrays.items():  # all checked before any is written
            self.params[name][...] = array
        return LoadResult(missing, unexpected)


class HasParameters:
    """Parameter access shared by layers and cells, all of it through ``self._store``."""

    @property
    def params(self):
        """dict of str to ndarray: parameters by name, views into :attr:`flat_params`."""
        return self._store.params

    @property
    def grads(self):
        """dict of str to ndarray: gradients by name, views into :attr:`flat_grads`."""
        return self._store.grads

    @property
    def flat_params(self):
        """ndarray: every parameter in one 1-D buffer."""
        return self._store.flat_params

    @property
    def flat_grads(self):
        """ndarray: every gradient in one 1-D buffer, same layout as :attr:`flat_params`."""
        return self._store.flat_grads

    def _move_parameters(self, flat_params, flat_grads):
        """Keep the parameters (and gradients) in slices of someone else's buffers.

        Used by :class:`~fastrnn.nn.Sequential`, which owns one buffer for all its
        layers. Values are copied over; the layer's views then point into the new
        buffers.
        """
        layout = [(name, value.shape) for name, value in self._store.params.items()]
        flat_params[...] = self._store.flat_params
        flat_grads[...] = self._store.flat_grads
        self._store = ParameterStore(layout, flat_params.dtype, flat_params, flat_grads)
        self._parameters_moved()

    def _parameters_moved(self):
        """Hook: rebuild anything that holds views of the old buffers."""

    def zero_grad(self):
        """Set every gradient to zero (backward accumulates)."""
        self._store.flat_grads[...] = 0

    def state_dict(self):
        """Copies of the parameters by name: NumPy arrays that load into torch."""
        return self._store.state_dict()

    def load_state_dict(self, state_dict, strict=True):
        """Load parameters by name, e.g. a torch state_dict converted to NumPy.

        Returns
        -------
        LoadResult
            ``(missing_keys, unexpected_keys)``, both empty under ``strict``.
        """
        return self._store.load_state_dict(state_dict, strict)
