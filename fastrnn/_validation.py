"""Argument checks shared by the public API.

Every check raises ``TypeError`` (wrong kind of thing) or ``ValueError`` (right
kind, wrong value) with a message naming the argument, what was expected and
what came, so no numba typing error ever reaches a user.
"""

import math
import numbers

import numpy as np

from . import config


def describe(value):
    """Short description of a value for error messages: type, dtype and shape."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if is_device_array(value):
        return (f"a GPU array ({type(value).__name__}) of dtype {np.dtype(value.dtype)} and "
                f"shape {tuple(value.shape)}")
    return f"{type(value).__name__} {value!r}" if np.isscalar(value) else type(value).__name__


def is_device_array(value):
    """Whether ``value`` is a GPU array: it exposes ``__cuda_array_interface__`` (numba,
    CuPy, PyTorch CUDA tensors) or is a numba device array (which, in numba's CUDA
    simulator, is a host array in disguise). Imports nothing."""
    return hasattr(value, "__cuda_array_interface__") or bool(
        getattr(value, "__cuda_ndarray__", False))


def check_finite(name, value):
    """Raise ``FloatingPointError`` when ``value`` holds a NaN or an infinity.

    ``value`` is an array (GPU arrays are copied to the host for the check),
    a tuple of them (an LSTM state pair), or None (nothing to check); the
    message names the argument, the first offending element and its value.
    Integer arrays (token ids) are always finite.
    """
    if value is None:
        return
    if isinstance(value, (tuple, list)):
        for index, part in enumerate(value):
            check_finite(f"{name}[{index}]", part)
        return
    if is_device_array(value):
        from .device import to_numpy
        value = to_numpy(value)
    array = np.asarray(value)
    if array.dtype.kind not in "fc":
        return
    finite = np.isfinite(array)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        count = int(finite.size - np.count_nonzero(finite))
        raise FloatingPointError(
            f"{name} must be finite (check_finite=True), got {array[where]} at index {where} "
            f"({count} non-finite value{'s' if count > 1 else ''} in all)")


def check_int(name, value, minimum):
    """Return ``value`` as an int, requiring an integer ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_bool(name, value):
    """Return ``value`` as a bool, requiring a real boolean."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")
    return bool(value)


def check_choice(name, value, choices):
    """Require ``value`` to be one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_positive(name, value, allow_inf=False):
    """Return ``value`` as a float, requiring a real number > 0 (and finite unless
    ``allow_inf``); NaN is not a real number here."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or (
            math.isnan(value)):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    if value <= 0 or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be positive{'' if allow_inf else ' and finite'}, "
                         f"got {value}")
    return float(value)


def check_dropout(value):
    """Require a dropout probability in [0, 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"dropout must be a float in [0, 1), got {describe(value)}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be a float in [0, 1), got {value}")
    return float(value)


def resolve_dtype(value):
    """The parameter dtype: float32 or float64; anything else is a ``TypeError``."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {value!r}") from None
    if dtype not in config.SUPPORTED_DTYPES:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype}")
    return dtype


def as_float_array(name, value, dtype):
    """``value`` as an ndarray of exactly ``dtype``, never cast silently.

    Lists and tuples (which carry no dtype) are converted to ``dtype``; arrays
    must already have it, so float64 data is never rounded to float32 behind
    the user's back (nor float32 widened).
    """
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value, dtype=dtype)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an array of {dtype}, got a {type(value).__name__} "
                            "that does not convert to one") from None
    if not hasattr(value, "dtype") or not hasattr(value, "shape"):
        raise TypeError(f"{name} must be a numpy array of {dtype}, got {describe(value)}")
    if is_device_array(value):
        raise TypeError(f"{name} must be a numpy array of {dtype}, got a GPU array "
                        f"({type(value).__name__}) of shape {tuple(value.shape)}; this runs "
                        "on the host (device='cpu'): copy it with fastrnn.to_numpy(), or use a "
                        "layer built with device='cuda', which takes GPU arrays")
    array = np.asarray(value)
    if array.dtype != dtype:
        given = array.dtype
        kind = "floating" if given.kind == "f" else "non-floating"
        order = "" if given.isnative else " (non-native byte order)"
        advice = f"convert it with .astype(numpy.{dtype})"
        if given.isnative and given in config.SUPPORTED_DTYPES:
            advice += f" or build the layer with dtype=numpy.{given}"
        raise TypeError(f"{name} must have dtype {dtype} (the layer's dtype), got {kind} dtype "
                        f"{given}{order}; {advice}")
    return array


def check_shape(name, array, expected):
    """Require ``array.shape == expected``."""
    if array.shape != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {array.shape}")
    return array


def check_lengths(lengths, steps, batch):
    """Sequence lengths as a C-contiguous int64 array of shape (batch,).

    Each entry must be an integer in ``[0, steps]``.
    """
    if lengths is None:
        return np.full(batch, steps, dtype=np.int64)
    array = np.asarray(lengths)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.shape != (batch,):
        raise ValueError(f"lengths must have one entry per batch entry, {batch}, "
                         f"got {array.size} (shape {array.shape})")
    if array.dtype.kind == "O" and all(isinstance(n, (int, np.integer)) for n in array):
        # Python ints beyond int64 (numpy keeps them as objects)
        values = [int(n) for n in array]
        if min(values) < 0 or max(values) > steps:
            raise ValueError(f"lengths must be in [0, {steps}] (the number of time steps), "
                             f"got values from {min(values)} to {max(values)}")
        array = np.array(values, np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"lengths must be integers, got {describe(lengths)} of dtype "
                        f"{array.dtype}")
    if array.size and (array.min() < 0 or array.max() > steps):
        raise ValueError(f"lengths must be in [0, {steps}] (the number of time steps), "
                         f"got values from {array.min()} to {array.max()}")
    # A copy: the tape keeps it, and the caller's array may change before backward.
    return np.array(array, dtype=np.int64)
