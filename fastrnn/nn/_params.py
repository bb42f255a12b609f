"""One flat parameter buffer and one flat gradient buffer per module.

Named parameters are views into the flat buffers, so optimizers, clipping and
checkpoints can each work on one array. A ``device="cuda"`` layer keeps both
buffers on the GPU (:class:`DeviceParameterStore`): its views are numba device
arrays, and only :meth:`~ParameterStore.state_dict` and loading move values
between host and device.
"""

from collections import namedtuple

import numpy as np

from .._validation import describe, is_device_array

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
        view = type(store).__new__(type(store))
        view.flat_params, view.flat_grads = store.flat_params, store.flat_grads
        view.params = {new: store.params[old] for new, old in names.items()}
        view.grads = {new: store.grads[old] for new, old in names.items()}
        return view

    def to_device(self):
        """A :class:`DeviceParameterStore` of the same layout holding copies of these values."""
        from ..kernels.cuda._arrays import upload
        layout = [(name, value.shape) for name, value in self.params.items()]
        return DeviceParameterStore(layout, self.flat_params.dtype, upload(self.flat_params),
                                    upload(self.flat_grads))

    def zero_grads(self):
        """Set every gradient to zero."""
        self.flat_grads[...] = 0

    def state_dict(self):
        """Copies of every parameter, by name (NumPy arrays, loadable into torch)."""
        return {name: value.copy() for name, value in self.params.items()}

    def _checkable(self, value):
        """A loaded value as something with a dtype and a shape, without copying a GPU array."""
        if is_device_array(value):
            from ..kernels.cuda._arrays import adopt
            return adopt(value)
        return np.asarray(value)

    def _write(self, name, array):
        if is_device_array(array):
            array = array.copy_to_host()
        self.params[name][...] = array

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
            array = self._checkable(state[name])
            if np.dtype(array.dtype).kind not in "fiu":
                raise TypeError(f"state_dict[{name!r}] must be a real numeric array, "
                                f"got dtype {array.dtype}")
            if tuple(array.shape) != tuple(self.params[name].shape):
                raise ValueError(f"state_dict[{name!r}] must have shape "
                                 f"{tuple(self.params[name].shape)}, got {tuple(array.shape)}")
            arrays[name] = array
        for name, array in arrays.items():  # all checked before any is written
            self._write(name, array)
        return LoadResult(missing, unexpected)


class DeviceParameterStore(ParameterStore):
    """A :class:`ParameterStore` whose flat buffers are numba device arrays.

    The named views are device arrays too (slices of the flat buffers). The
    kernels read and write them in place; :meth:`state_dict` copies them to
    the host and :meth:`load_state_dict` copies host or device arrays in.
    """

    def zero_grads(self):
        from ..kernels.cuda._arrays import fill
        fill(self.flat_grads, 0)

    def state_dict(self):
        """Host copies of every parameter, by name (NumPy arrays, loadable into torch)."""
        return {name: value.copy_to_host() for name, value in self.params.items()}

    def _write(self, name, array):
        from ..kernels.cuda._arrays import assign, upload
        target = self.params[name]
        if is_device_array(array) and np.dtype(array.dtype) == target.dtype and (
                array.is_c_contiguous()):
            assign(target, array)   # device to device
            return
        if is_device_array(array):
            array = array.copy_to_host()
        assign(target, upload(np.asarray(array, dtype=target.dtype)))


class HasParameters:
    """Parameter access shared by layers and cells, all of it through ``self._store``."""

    @property
    def params(self):
        """dict of str to ndarray: parameters by name, views into :attr:`flat_params`.

        Device arrays (numba) for a ``device="cuda"`` layer, whose parameters
        live on the GPU; :meth:`state_dict` gives NumPy copies.
        """
        return self._store.params

    @property
    def grads(self):
        """dict of str to ndarray: gradients by name, views into :attr:`flat_grads`
        (device arrays for a ``device="cuda"`` layer)."""
        return self._store.grads

    @property
    def flat_params(self):
        """ndarray: every parameter in one 1-D buffer (a numba device array for a
        ``device="cuda"`` layer: read it with :func:`fastrnn.to_numpy`)."""
        return self._store.flat_params

    @property
    def flat_grads(self):
        """ndarray: every gradient in one 1-D buffer, same layout as :attr:`flat_params`
        (a numba device array for a ``device="cuda"`` layer)."""
        return self._store.flat_grads

    def _move_parameters(self, flat_params, flat_grads):
        """Keep the parameters (and gradients) in slices of someone else's buffers.

        Used by :class:`~fastrnn.nn.Sequential`, which owns one buffer for all its
        layers. Values are copied over (device to device for a ``device="cuda"``
        layer, whose new buffers must be GPU arrays too); the layer's views then
        point into the new buffers.
        """
        store = self._store
        layout = [(name, value.shape) for name, value in store.params.items()]
        if isinstance(store, DeviceParameterStore):
            from ..kernels.cuda._arrays import assign
            assign(flat_params, store.flat_params)
            assign(flat_grads, store.flat_grads)
        else:
            flat_params[...] = store.flat_params
            flat_grads[...] = store.flat_grads
        self._store = type(store)(layout, flat_params.dtype, flat_params, flat_grads)
        self._parameters_moved()

    def _parameters_moved(self):
        """Hook: rebuild anything that holds views of the old buffers."""

    def zero_grad(self):
        """Set every gradient to zero (backward accumulates)."""
        self._store.zero_grads()

    def state_dict(self):
        """Copies of the parameters by name: NumPy arrays that load into torch (host
        copies for a ``device="cuda"`` layer)."""
        return self._store.state_dict()

    def load_state_dict(self, state_dict, strict=True):
        """Load parameters by name, e.g. a torch state_dict converted to NumPy.

        Values may be NumPy arrays or GPU arrays (``__cuda_array_interface__``),
        whatever the layer's device; they are copied in.

        Returns
        -------
        LoadResult
            ``(missing_keys, unexpected_keys)``, both empty under ``strict``.
        """
        return self._store.load_state_dict(state_dict, strict)
