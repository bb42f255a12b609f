"""CPU activations: vectorisable ``tanh`` and sigmoid for float32 and float64.

numba cannot vectorise calls to libm's ``tanhf``/``expf`` without Intel's SVML,
which is not a dependency. For float32 these overloads use a rational
approximation of ``tanh`` (a degree-13/6 odd/even polynomial ratio on
[-7.905, 7.905], the form used by Eigen), which LLVM turns into SIMD code; its
error is below 4e-7 relative, about 3 float32 ulp. The sigmoid is then
``0.5 + 0.5 tanh(x / 2)``. float64 uses an ``exp`` of its own (range
reduction by ln 2, a degree-13 polynomial, the power of two built from its
exponent bits) and from it ``tanh`` (through ``expm1`` below 0.625) and the
sigmoid, within 3 ulp of the correctly rounded values, so float64 results still
agree with references to ~1e-15.
"""

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

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


# float64: exp, tanh and sigmoid from polynomials that LLVM vectorises (2.2 against
# libm's 8.4 ns a value here), within 3 ulp of the correctly rounded values
# (tests/test_activations.py), with IEEE behaviour at +-0, +-inf and NaN. The Horner
# chains (coefficients 1/k!) are written out: the same loop over a tuple of
# coefficients is not vectorised (9.9 against 1.4 ns a value, measured).
_helper = numba.njit(inline="always", error_model="numpy", fastmath={"contract"})
_INV_LN2 = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01   # ln 2 split so that n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_EXP_MAX = 709.782712893384            # exp overflows above
_EXP_MIN = -745.1332191019412          # exp underflows to 0 below


@intrinsic
def _bits_to_float64(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (an LLVM bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _select(typingctx, condition, if_true, if_false):
    """``if_true if condition else if_false`` as one LLVM ``select`` (no branch, so
    loops around it still vectorise, and nothing for numba's inliner to split)."""
    def codegen(context, builder, signature, args):
        return builder.select(args[0], args[1], args[2])
    return types.float64(types.boolean, types.float64, types.float64), codegen


@_helper
def _pow2(k):
    """``2.0 ** k`` for an integer-valued float ``k`` in [-1076, 1024], exactly: two
    normal powers of two built from their exponent bits."""
    half = np.floor(k * 0.5)
    first = _bits_to_float64(np.int64(half + 1023.0) << 52)
    return first * _bits_to_float64(np.int64(k - half + 1023.0) << 52)


@_helper
def _exp_float64(x):
    """``exp(x)``: ``x = n ln 2 + r``, ``|r| <= ln 2 / 2``, Taylor to degree 13 in r.

    The clamp keeps ``n`` in [-1077, 1025], where :func:`_pow2` is exact and
    overflows to inf or underflows to 0 exactly where ``exp`` does; NaN passes
    through ``np.minimum``/``np.maximum``.
    """
    y = np.minimum(np.maximum(x, _EXP_MIN - 1.0), _EXP_MAX + 1.0)
    n = np.floor(y * _INV_LN2 + 0.5)
    r = (y - n * _LN2_HI) - n * _LN2_LO
    p = 1.6059043836821613e-10
    p = p * r + 2.08767569878681e-09
    p = p * r + 2.505210838544172e-08
    p = p * r + 2.755731922398589e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.48015873015873e-05
    p = p * r + 0.0001984126984126984
    p = p * r + 0.001388888888888889
    p = p * r + 0.008333333333333333
    p = p * r + 0.041666666666666664
    p = p * r + 0.16666666666666666
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _pow2(n)


@_helper
def _expm1_small(y):
    """``exp(y) - 1`` for ``|y| <= 1.25``, Taylor to degree 20 (no cancellation)."""
    p = 4.110317623312165e-19
    p = p * y + 8.22063524662433e-18
    p = p * y + 1.5619206968586225e-16
    p = p * y + 2.8114572543455206e-15
    p = p * y + 4.779477332387385e-14
    p = p * y + 7.647163731819816e-13
    p = p * y + 1.1470745597729725e-11
    p = p * y + 1.6059043836821613e-10
    p = p * y + 2.08767569878681e-09
    p = p * y + 2.505210838544172e-08
    p = p * y + 2.755731922398589e-07
    p = p * y + 2.7557319223985893e-06
    p = p * y + 2.48015873015873e-05
    p = p * y + 0.0001984126984126984
    p = p * y + 0.001388888888888889
    p = p * y + 0.008333333333333333
    p = p * y + 0.041666666666666664
    p = p * y + 0.16666666666666666
    p = p * y + 0.5
    p = p * y + 1.0
    return p * y


def _tanh_float64(x, one):
    ax = np.abs(x)
    small = _expm1_small(np.maximum(-2.0 * ax, -1.25))   # expm1(-2|x|) while |x| < 0.625
    large = _exp_float64(-2.0 * ax)
    magnitude = _select(ax < 0.625, -small / (2.0 + small), (1.0 - large) / (1.0 + large))
    return math.copysign(magnitude, x)


def _sigmoid_float64(x, one):
    return 1.0 / (1.0 + _exp_float64(-x))


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
    if x == types.float64:
        return _tanh_float64
    return lambda x, one: math.tanh(x)


@overload(sigmoid, inline="always")
def _sigmoid_overload(x, one):
    if x == types.float32:
        return _sigmoid_float32
    if x == types.float64:
        return _sigmoid_float64
    return lambda x, one: one / (one + math.exp(-x))
