"""The CPU kernels' activations against NumPy's correctly rounded ones."""

import math

import numba
import numpy as np
import pytest

from fastrnn.kernels.cpu import activations

EDGES = [0.0, -0.0, 1e-300, -1e-300, 5e-324, 0.6249999999, 0.625, 0.6250000001, 19.1, -19.1,
         400.0, 709.7, 709.8, 745.2, -745.2, -746.0, 800.0, -800.0, np.inf, -np.inf, np.nan]


@numba.njit(error_model="numpy")
def _apply(kind, xs, out):
    one = np.ones(1, xs.dtype)[0]
    for i in range(xs.size):
        if kind == 0:
            out[i] = activations.tanh(xs[i], one)
        else:
            out[i] = activations.sigmoid(xs[i], one)


def _inputs():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.uniform(-1, 1, 20000), rng.uniform(-40, 40, 20000),
                           rng.standard_normal(2000) * 1e-6, EDGES])


@pytest.mark.parametrize("kind, reference", [(0, np.tanh),
                                             (1, lambda x: 1.0 / (1.0 + np.exp(-x)))])
def test_float64_activations_are_within_three_ulp(kind, reference):
    xs = _inputs()
    out = np.empty_like(xs)
    _apply(kind, xs, out)
    with np.errstate(over="ignore"):
        expected = reference(xs)
    finite = np.isfinite(expected) & (expected != 0)
    ulps = np.abs(out[finite] - expected[finite]) / np.abs(expected[finite]) / np.finfo(float).eps
    assert ulps.max() <= 3.0, ulps.max()
    rest = ~finite
    assert np.array_equal(out[rest], expected[rest], equal_nan=True)
    assert np.array_equal(np.signbit(out[rest]), np.signbit(expected[rest]))


def test_float64_tanh_keeps_the_sign_of_zero_and_saturates():
    out = np.empty(4)
    _apply(0, np.array([-0.0, 0.0, 30.0, -30.0]), out)
    assert math.copysign(1.0, out[0]) == -1.0 and math.copysign(1.0, out[1]) == 1.0
    assert out[2] == 1.0 and out[3] == -1.0
