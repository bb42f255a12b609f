r"""Loss functions: each returns ``(loss, dlogits)``, the value and its gradient.

The gradient is with respect to the first argument and already includes the
reduction, so it can go straight into a model's ``backward``.

* :func:`softmax_cross_entropy`: :math:`\ell = \operatorname{logsumexp}(z) - z_y`,
  :math:`\partial\ell/\partial z = \operatorname{softmax}(z) - e_y`; fused and
  computed from ``z - max(z)``, so it never overflows.
* :func:`mse`: :math:`\ell = (p - t)^2`, :math:`\partial\ell/\partial p = 2 (p - t)`.
* :func:`binary_logistic`: :math:`\ell = \log(1 + e^{z}) - t z` computed as
  :math:`\max(z, 0) - t z + \log(1 + e^{-|z|})`,
  :math:`\partial\ell/\partial z = \sigma(z) - t`.

``reduction="mean"`` divides by the number of terms (for cross-entropy, the
number of targets not equal to ``ignore_index``: PyTorch's convention);
``"sum"`` does not. The loss is returned as a Python float, accumulated in
float64; the gradient has the dtype of the input.
"""

import numpy as np

from ._validation import check_choice, describe

_REDUCTIONS = ("mean", "sum")


def _float_input(name, value):
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got {describe(value)}")
    return array


def _reduced(total, grad, count, reduction):
    """``(loss, grad)`` for a summed loss and its per-term gradient, after the reduction."""
    if reduction == "sum":
        return total, grad
    grad /= grad.dtype.type(max(count, 1))
    return total / max(count, 1), grad


def softmax_cross_entropy(logits, targets, *, reduction="mean", ignore_index=None):
    """Softmax cross-entropy of integer class targets.

    Parameters
    ----------
    logits : ndarray, shape (..., C), float32 or float64
    targets : ndarray of int, shape (...)
        Class indices in ``[0, C)``, or ``ignore_index``.
    reduction : {"mean", "sum"}
    ignore_index : int, optional
        Targets equal to it add nothing to the loss, the count or the gradient.

    Returns
    -------
    loss : float
    dlogits : ndarray, shape and dtype of ``logits``

    Examples
    --------
    >>> import numpy as np
    >>> loss, d = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6), d[0].round(3).tolist()
    (1.386294, [-0.375, 0.125, 0.125, 0.125])
    """
    check_choice("reduction", reduction, _REDUCTIONS)
    logits = _float_input("logits", logits)
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be an integer array, got {describe(targets)}")
    if logits.ndim < 1 or targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets must have shape logits.shape[:-1] = {logits.shape[:-1]}, "
                         f"got {targets.shape}")
    classes = logits.shape[-1]
    z = logits.reshape(-1, classes)
    y = targets.reshape(-1)
    keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    if np.any((y[keep] < 0) | (y[keep] >= classes)):
        raise ValueError(f"targets must lie in [0, {classes}) (or equal ignore_index), got "
                         f"values from {y[keep].min()} to {y[keep].max()}")
    shifted = z - z.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    norm = exp.sum(axis=1, keepdims=True)
    rows = np.flatnonzero(keep)
    picked = shifted[rows, y[rows]].astype(np.float64)
    total = float(np.sum(np.log(norm[rows, 0].astype(np.float64)) - picked))
    grad = exp / norm
    grad[rows, y[rows]] -= 1
    grad[~keep] = 0
    loss, grad = _reduced(total, grad, int(rows.size), reduction)
    return loss, grad.reshape(logits.shape)


def mse(predictions, targets, *, reduction="mean"):
    """Squared error. Returns ``(loss, dpredictions)``.

    Parameters
    ----------
    predictions, targets : ndarray of the same shape (targets cast to the predictions' dtype)
    reduction : {"mean", "sum"}
    """
    check_choice("reduction", reduction, _REDUCTIONS)
    predictions = _float_input("predictions", predictions)
    targets = np.asarray(targets)
    if targets.shape != predictions.shape:
        raise ValueError(f"targets must have the predictions' shape {predictions.shape}, "
                         f"got {targets.shape}")
    diff = predictions - targets.astype(predictions.dtype)
    total = float(np.sum(np.square(diff, dtype=np.float64)))
    return _reduced(total, 2 * diff, diff.size, reduction)


def binary_logistic(logits, targets, *, reduction="mean"):
    """Binary cross-entropy on logits (``BCEWithLogitsLoss``). Returns ``(loss, dlogits)``.

    Parameters
    ----------
    logits : ndarray
    targets : ndarray of the logits' shape, values in [0, 1]
    reduction : {"mean", "sum"}
    """
    check_choice("reduction", reduction, _REDUCTIONS)
    logits = _float_input("logits", logits)
    targets = np.asarray(targets)
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the logits' shape {logits.shape}, "
                         f"got {targets.shape}")
    t = targets.astype(logits.dtype)
    z = logits.astype(np.float64)
    total = float(np.sum(np.maximum(z, 0) - t * z + np.log1p(np.exp(-np.abs(z)))))
    grad = (0.5 + 0.5 * np.tanh(0.5 * z)).astype(logits.dtype) - t
    return _reduced(total, grad, logits.size, reduction)


def perplexity(mean_loss):
    """``exp(mean cross-entropy per token)``: the language-model perplexity."""
    return float(np.exp(mean_loss))
