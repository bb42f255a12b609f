"""Error measures for comparing arrays against references."""

import numpy as np


def relative_error(actual, expected):
    """``max|actual - expected| / max|expected|`` (absolute when the reference is ~0)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = np.abs(expected).max(initial=0.0)
    return np.abs(actual - expected).max(initial=0.0) / (scale if scale >= 1e-6 else 1.0)


def assert_close(actual, expected, tol, what):
    """Fail with the measured error when ``relative_error`` exceeds ``tol``."""
    if isinstance(expected, tuple):
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_close(a, e, tol, f"{what}[{index}]")
        return
    err = relative_error(actual, expected)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def central_difference(function, array, eps=1e-6):
    """Two-point central differences of the scalar ``function()`` for every entry of
    ``array`` (perturbed in place and restored)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = function()
        array[index] = saved - eps
        minus = function()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def assert_inference_equals_training(layer, x, lengths):
    """``layer(x)`` (no tape) gives the outputs and final states of ``layer.forward(x)``,
    bit for bit."""
    y, h_n = layer(x, lengths=lengths)
    y_train, h_train, _ = layer.forward(x, lengths=lengths)
    np.testing.assert_array_equal(y, y_train)
    for got, want in zip(h_n, h_train):
        np.testing.assert_array_equal(got, want)
