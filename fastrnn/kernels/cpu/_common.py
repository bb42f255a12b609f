"""Matrix products shared by every cell: one GEMM before and after each scan.

The scans in this package run only the recurrent product inside the time loop.
Everything that can be batched over time happens here, as single BLAS calls
over all ``T * B`` rows.
"""

import numpy as np


def input_projection(x, weight_ih, bias):
    """Pre-activations from the input for all steps: ``x @ W_ih^T + bias``.

    Parameters
    ----------
    x : ndarray, shape (T, B, I), C-contiguous
    weight_ih : ndarray, shape (G, I)
    bias : ndarray of shape (G,) or None

    Returns
    -------
    ndarray, shape (T, B, G), C-contiguous
    """
    steps, batch, features = x.shape
    projected = x.reshape(steps * batch, features) @ weight_ih.T
    if bias is not None:
        projected += bias
    return projected.reshape(steps, batch, -1)


def accumulate_input_grads(d_pre, x, weight_ih, grad_weight_ih, dx):
    """Add the input-side gradients of one scan.

    ``grad_weight_ih += sum_t d_pre[t]^T x[t]`` and ``dx += d_pre @ W_ih``, each
    as one GEMM over all steps.

    Parameters
    ----------
    d_pre : ndarray, shape (T, B, G)
        Gradient with respect to the input pre-activations.
    x : ndarray, shape (T, B, I)
    weight_ih, grad_weight_ih : ndarray, shape (G, I)
    dx : ndarray, shape (T, B, I), updated in place
    """
    steps, batch, gates = d_pre.shape
    rows = d_pre.reshape(steps * batch, gates)
    grad_weight_ih += rows.T @ x.reshape(steps * batch, -1)
    dx += (rows @ weight_ih).reshape(dx.shape)


def accumulate_outer(grad, d_rows, inputs):
    """``grad += d_rows^T @ inputs`` with both flattened over (T, B)."""
    grad += d_rows.reshape(-1, d_rows.shape[-1]).T @ inputs.reshape(-1, inputs.shape[-1])


def column_sums(d_pre):
    """Sum of a (T, B, G) gradient over time and batch: the bias gradient."""
    return d_pre.reshape(-1, d_pre.shape[-1]).sum(axis=0)


def tape_length(steps, keep_tape):
    """Leading size of tape arrays: every step when training, one slot otherwise."""
    return steps if keep_tape else 1
