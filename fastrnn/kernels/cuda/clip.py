"""Gradient clipping on the GPU: norms by a fixed-order reduction, scaling and clamping.

The global norm is reduced in two launches with no atomics: :data:`PARTS`
threads each sum (in float64) every ``PARTS``-th element in index order, then
one thread adds those partial sums in order. The same gradients give the same
bits on every run, whatever the block size. Only the total (one float64)
comes back to the host, which :func:`fastrnn.training.clip_grad_norm` returns.
"""

import math

import numpy as np
from numba import cuda

from ._arrays import flat
from ._jit import kernel

#: Number of partial sums of the first reduction pass (fixed: it sets the
#: summation order, so it is not tied to the block size).
PARTS = 256

#: Codes of the reduction's kind.
_SUM_SQUARES, _SUM_POWERS, _MAX_ABS = 0, 1, 2


@kernel("void({f}[::1], int64, float64, float64[::1])")
def _partial_norms(values, kind, power, partial):
    k = cuda.grid(1)
    stride = partial.shape[0]
    if k >= stride:
        return
    total = 0.0
    for i in range(k, values.shape[0], stride):
        a = abs(np.float64(values[i]))
        if kind == 2:
            if a > total or a != a:   # NaN wins, as numpy.max
                total = a
        elif kind == 0:
            total += a * a
        else:
            total += a ** power
    partial[k] = total


@kernel("void(float64[::1], int64, float64[::1])", float_types=("float64",))
def _combine(partial, kind, out):
    if cuda.grid(1) != 0:
        return
    total = 0.0
    for k in range(partial.shape[0]):
        a = partial[k]
        if kind == 2:
            if a > total or a != a:
                total = a
        else:
            total += a
    out[0] = total


@kernel("void({f}[::1], {f})")
def _scale(values, factor):
    i = cuda.grid(1)
    if i < values.shape[0]:
        values[i] = values[i] * factor


@kernel("void({f}[::1], {f})")
def _clamp(values, bound):
    i = cuda.grid(1)
    if i < values.shape[0]:
        v = values[i]
        if v > bound:
            values[i] = bound
        elif v < -bound:
            values[i] = -bound


def reduce_norm(array, norm_type):
    """``sum(|a| ** norm_type)`` (``max |a|`` for inf) of a device array, as a Python float.

    Accumulated in float64 in a fixed order; one float64 is copied back.
    """
    if array.size == 0:
        return 0.0
    kind = _MAX_ABS if math.isinf(norm_type) else _SUM_SQUARES if norm_type == 2.0 else (
        _SUM_POWERS)
    partial = cuda.device_array(PARTS, np.float64)
    _partial_norms.over(PARTS, flat(array), kind, float(norm_type), partial)
    out = cuda.device_array(1, np.float64)
    _combine.launch(1, 1, partial, kind, out)
    return float(out.copy_to_host()[0])


def scale(array, factor):
    """``array *= factor`` in place (``factor`` rounded to the array's dtype first)."""
    if array.size:
        _scale.over(array.size, flat(array), array.dtype.type(factor))


def clamp(array, bound):
    """Clamp a device array to ``[-bound, bound]`` in place (NaN stays NaN, as numpy.clip)."""
    if array.size:
        _clamp.over(array.size, flat(array), array.dtype.type(bound))
