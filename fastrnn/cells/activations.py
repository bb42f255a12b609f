"""Scalar activations used by the cell math.

Each takes ``one``, the number 1 in the working dtype, so that no float64
literal widens float32 arithmetic (numba and CUDA both promote ``1.0 - x`` to
float64). These are the reference implementations; a backend may substitute
faster ones of the same accuracy class (the CPU backend uses a rational
``tanh`` for float32, see :mod:`fastrnn.kernels.cpu.activations`).
"""

import math


def sigmoid(x, one):
    """Logistic function ``1 / (1 + exp(-x))``; saturates cleanly to 0 and 1."""
    return one / (one + math.exp(-x))


def tanh(x, one):
    """Hyperbolic tangent."""
    return math.tanh(x)


def relu(x, one):
    """Rectified linear unit ``max(x, 0)``; NaN stays NaN."""
    zero = one - one
    return zero if x < zero else x
