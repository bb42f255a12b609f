"""CPU activations: the reference ones, with a vectorisable float32 ``tanh``.

numba cannot vectorise calls to libm's ``tanhf``/``expf`` without Intel's SVML,
which is not a dependency. For float32 these overloads use a rational
approximation of ``tanh`` (a degree-13/6 odd/even polynomial ratio on
[-7.905, 7.905], the form used by Eigen), which LLVM turns into SIMD code; its
error is below 4e-7 relative, about 3 float32 ulp. The sigmoid is then
``0.5 + 0.5 tanh(x / 2)``. float64 keeps libm's correctly rounded functions,
so float64 results agree with references to ~1e-15.
"""

import math

import numpy as np
from numba import types
from numba.extending import overload

from ...cells import activations as reference

_CLAMP = np.float32(7.90531110763549805)
_HALF = np.float32(0.5)
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)


def _tanh_float32(x, one):
    # min/max return their first argument when the comparison fails, so NaN
    # passes through unchanged.
    x = max(min(x, _CLAMP), -_CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = x2 * p + _A9
    p = x2 * p + _A7
    p = x2 * p + _A5
    p = x2 * p + _A3
    p = x2 * p + _A1
    q = x2 * _B6 + _B4
    q = x2 * q + _B2
    q = x2 * q + _B0
    return x * p / q


def _sigmoid_float32(x, one):
    return _HALF + _HALF * tanh(_HALF * x, one)


def tanh(x, one):
    """Hyperbolic tangent; vectorisable rational form for float32."""
    return reference.tanh(x, one)


def sigmoid(x, one):
    """Logistic function; via the rational ``tanh`` for float32."""
    return reference.sigmoid(x, one)


@overload(tanh, inline="always")
def _tanh_overload(x, one):
    if x == types.float32:
        return _tanh_float32
    return lambda x, one: math.tanh(x)


@overload(sigmoid, inline="always")
def _sigmoid_overload(x, one):
    if x == types.float32:
        return _sigmoid_float32
    return lambda x, one: one / (one + math.exp(-x))
