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


#: NumPy's versions of the operations (see the module docstring).
HOST = types.SimpleNamespace(
    zeros=_memory.zeros, empty_like=np.empty_like, put=_put, multiply=_multiply, swap01=_swap01,
    contiguous=np.ascontiguousarray, to_host=_identity, native=_identity,
    float_input=as_float_array,
    row=lambda array, index: np.ascontiguousarray(array[index]),
    squeeze1=lambda array: array[:, 0, :],
    unsqueeze1=lambda array: array[:, None, :],
)
