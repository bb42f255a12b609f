"""Device arrays for the layers: adoption, allocation and the small elementwise kernels.

What the layer code (:mod:`fastrnn.nn`) needs to hold its buffers on the
device: adopting a caller's device array in place (:func:`adopt`), uploading
a host one (:func:`upload`), zero-filled buffers, and the elementwise
operations the layers apply between scans (dropout masks, transposing the two
leading axes for ``batch_first``, copying one state row). Every kernel is one
thread per element, so results are exact and the same on every run.

:data:`ARRAYS` gathers the functions the layers call under one name each; its
host twin, NumPy's, is :data:`fastrnn.nn._arrays.HOST`.
"""

import types

import numpy as np
from numba import cuda

from ..._validation import as_float_array, is_device_array
from ._jit import kernel, row_col


def adopt(array):
    """A caller's device array as a numba device array, in place (no copy).

    numba's own device arrays (and the simulator's) pass through; any other
    ``__cuda_array_interface__`` array (CuPy, PyTorch CUDA tensors) is wrapped
    by ``numba.cuda.as_cuda_array``, sharing its memory.
    """
    if getattr(array, "__cuda_ndarray__", False):
        return array
    return cuda.as_cuda_array(array)


def upload(array):
    """A device copy of a host array (made C-contiguous first)."""
    return cuda.to_device(np.ascontiguousarray(array))


def to_device(array):
    """``array`` on the device: adopted in place when it is a device array, else uploaded."""
    return adopt(array) if is_device_array(array) else upload(array)


def to_host(array):
    """A NumPy copy of a device array (NumPy arrays are returned as they are)."""
    return array if isinstance(array, np.ndarray) else array.copy_to_host()


def is_c_contiguous(array):
    """Whether a device array is C-contiguous (what every kernel takes)."""
    return bool(array.is_c_contiguous()) or array.size == 0


def copy(array):
    """A new C-contiguous device array holding the values of a device array."""
    out = cuda.device_array(array.shape, array.dtype)
    if array.size:
        out.copy_to_device(array)
    return out


def assign(target, source):
    """``target[...] = source`` between device arrays of one shape (device to device)."""
    if source.size:
        target.copy_to_device(source)


def flat(array):
    """A C-contiguous device array as 1-D (a view)."""
    return array.reshape(array.size)


@kernel("void({f}[::1], {f})")
def _fill(out, value):
    index = cuda.grid(1)
    if index < out.shape[0]:
        out[index] = value


@kernel("void({f}[::1], {f}[::1])")
def _multiply(target, factor):
    index = cuda.grid(1)
    if index < target.shape[0]:
        target[index] = target[index] * factor[index]


@kernel("void({f}[::1], {f}[::1], {f}[::1])")
def _add(a, b, out):
    index = cuda.grid(1)
    if index < out.shape[0]:
        out[index] = a[index] + b[index]


@cuda.jit(device=True)
def _element_3d(index, shape):
    """``(i, j, k)`` of the flat element ``index`` of a C-contiguous 3-D array of
    ``shape``; ``i`` is -1 past its last element."""
    first, second, width = shape
    if index >= first * second * width:
        return -1, 0, 0
    i, rest = row_col(index, second * width)
    j, k = row_col(rest, width)
    return i, j, k


@kernel("void({f}[:, :, ::1], {f}[:, :, ::1])")
def _swap01(source, target):
    # target[j, i, k] = source[i, j, k]
    i, j, k = _element_3d(cuda.grid(1), source.shape)
    if i >= 0:
        target[j, i, k] = source[i, j, k]


@kernel("void({f}[:, :, ::1], int64[::1])")
def _zero_padding(x, lengths):
    # x[t, b, :] = 0 for t >= lengths[b]
    t, b, k = _element_3d(cuda.grid(1), x.shape)
    if t >= 0 and t >= lengths[b]:
        x[t, b, k] = 0


def tape_input(x, lengths, callers):
    """Layer 0's input as its tape keeps it (see :func:`fastrnn.nn._arrays.tape_input`).

    A caller's device array is kept in place (device input is never copied),
    unless sequences are padded: then a device copy with zeros past each
    sequence's length, so that a NaN or infinity in the padding cannot reach
    the ``weight_ih`` gradients (a product over every step, padding included).
    """
    if lengths.min() >= x.shape[0] or np.dtype(x.dtype).kind != "f":
        return x
    own = copy(x)
    _zero_padding.over(own.size, own, to_device(lengths))
    return own


def fill(array, value):
    """Set every element of a C-contiguous device array to ``value``, in place."""
    if array.size:
        _fill.over(array.size, flat(array), array.dtype.type(value))


def zeros(shape, dtype):
    """A new zero-filled device array."""
    out = cuda.device_array(shape, dtype)
    fill(out, 0)
    return out


def full(shape, value, dtype):
    """A new device array filled with ``value``."""
    out = cuda.device_array(shape, dtype)
    fill(out, value)
    return out


def empty_like(array):
    """A new uninitialised C-contiguous device array of ``array``'s shape and dtype."""
    return cuda.device_array(array.shape, array.dtype)


def multiply(target, factor):
    """``target *= factor`` elementwise, in place; ``factor`` host (uploaded) or device."""
    if target.size:
        _multiply.over(target.size, flat(target), flat(to_device(factor)))


def add(a, b):
    """``a + b`` elementwise for device arrays of one shape, as a new device array."""
    out = cuda.device_array(a.shape, a.dtype)
    if out.size:
        _add.over(out.size, flat(a), flat(b), flat(out))
    return out


def swap01(array):
    """A C-contiguous device copy of a 3-D device array with its first two axes swapped."""
    first, second, width = array.shape
    out = cuda.device_array((second, first, width), array.dtype)
    if out.size:
        _swap01.over(out.size, array, out)
    return out


def put(target, index, value):
    """``target[index] = value`` for a row of a C-contiguous device array."""
    assign(target[index], value)


def _identity_contiguous(array):
    """Device arrays reach the layers C-contiguous already (:func:`float_input`)."""
    return array


def float_input(name, value, dtype):
    """``value`` as a C-contiguous device array of exactly ``dtype``.

    A device array is used in place (no copy) and must already have ``dtype``
    and be C-contiguous; a host array is checked as the CPU layers check it
    (:func:`fastrnn._validation.as_float_array`) and uploaded.

    Raises
    ------
    TypeError
        A device array of another dtype.
    ValueError
        A device array that is not C-contiguous.
    """
    if not is_device_array(value):
        return upload(as_float_array(name, value, dtype))
    array = adopt(value)
    if np.dtype(array.dtype) != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (the layer's dtype), got a GPU array of "
                        f"dtype {np.dtype(array.dtype)}; GPU arrays are never cast: convert it "
                        "first")
    if not is_c_contiguous(array):
        raise ValueError(f"{name} must be C-contiguous when it is a GPU array (it is used in "
                         f"place), got strides {tuple(array.strides)} for shape "
                         f"{tuple(array.shape)}; make a contiguous copy first")
    return array


def _unsqueeze1(array):
    return array.reshape((array.shape[0], 1) + tuple(array.shape[1:]))


def _squeeze1(array):
    return array.reshape((array.shape[0],) + tuple(array.shape[2:]))


#: The operations the layers need, under the names of their NumPy twins
#: (:data:`fastrnn.nn._arrays.HOST`).
ARRAYS = types.SimpleNamespace(
    zeros=zeros, empty_like=empty_like, put=put, multiply=multiply, swap01=swap01,
    contiguous=_identity_contiguous, to_host=to_host, native=to_device, float_input=float_input,
    row=lambda array, index: array[index], squeeze1=_squeeze1, unsqueeze1=_unsqueeze1,
    tape_input=tape_input,
)


def concatenate0(parts):
    """C-contiguous device arrays joined along axis 0, as a new device array (device copies)."""
    rest = tuple(parts[0].shape[1:])
    out = cuda.device_array((sum(part.shape[0] for part in parts),) + rest, parts[0].dtype)
    start = 0
    for part in parts:
        assign(out[start:start + part.shape[0]], part)
        start += part.shape[0]
    return out
