"""The array operations a layer applies between its backend's kernels, on the host.

A layer calls them through its ``_arrays`` attribute: :data:`HOST` (NumPy, these)
for ``device="cpu"``, :data:`fastrnn.kernels.cuda._arrays.ARRAYS` (device
arrays, same names) for ``device="cuda"``. So the layer code is one code for
both, and the CPU path runs exactly the NumPy operations it always ran.
"""

import types

import numpy as np

from .. import _memory
from .._validation import as_float_array


def _put(target, index, value):
    target[index] = value


def _multiply(target, factor):
    target *= factor


def _swap01(array):
    return np.ascontiguousarray(array.transpose(1, 0, 2))


def _identity(array):
    return array


def tape_input(x, lengths, callers):
    """Layer 0's input ``x`` (T, B, I) as its tape keeps it for the backward.

    ``callers`` is what the caller passed. When ``x`` may share memory with it,
    ``x`` is copied, so that changing the caller's array between ``forward``
    and ``backward`` (a reused batch buffer) cannot change the gradients. In
    floating input the steps past each sequence's length are set to zero (in
    the copy, or in ``x`` when it is already the layer's own): the ``weight_ih``
    gradient is a product over every step, padding included, where a NaN or
    infinity times a zero gradient would give NaN.
    """
    padded = lengths.min() < x.shape[0] and x.dtype.kind == "f"
    if isinstance(callers, np.ndarray) and np.may_share_memory(x, callers):
        own = _memory.empty(x.shape, x.dtype)
        own[...] = x
        x = own
    if padded:
        for b, length in enumerate(lengths):
            x[length:, b] = 0
    return x


#: NumPy's versions of the operations (see the module docstring).
HOST = types.SimpleNamespace(
    zeros=_memory.zeros, empty=_memory.empty, empty_like=np.empty_like, put=_put,
    multiply=_multiply, swap01=_swap01,
    contiguous=np.ascontiguousarray, to_host=_identity, native=_identity,
    float_input=as_float_array,
    row=lambda array, index: np.ascontiguousarray(array[index]),
    squeeze1=lambda array: array[:, 0, :],
    unsqueeze1=lambda array: array[:, None, :],
    tape_input=tape_input,
)
