"""Scalar activations and the derivatives the backward scans need."""

import math


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``; saturates cleanly to 0 and 1."""
    return 1.0 / (1.0 + math.exp(-x))


def tanh(x):
    """Hyperbolic tangent."""
    return math.tanh(x)


def relu(x):
    """Rectified linear unit ``max(x, 0)``."""
    return x if x > 0.0 else 0.0 * x
