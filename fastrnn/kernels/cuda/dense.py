"""Dense (fully connected) layer on the GPU: the backend's GEMM and column sums.

Same entry points as :mod:`fastrnn.kernels.cpu.dense`, on device arrays: the
weights and gradients are views of the layer's device-resident flat buffers,
and the gradients are accumulated in place by the GEMM and the column sums.
"""

from numba import cuda

from ._gemm import add_column_sums, add_row, matmul


def forward(weight, bias, x_rows):
    """``x_rows @ weight.T + bias`` for (N, in) device rows; returns a new (N, out) device array."""
    out = cuda.device_array((x_rows.shape[0], weight.shape[0]), x_rows.dtype)
    matmul(x_rows, weight, out, trans_b=True)
    if bias is not None:
        add_row(out, bias)
    return out


def backward(weight, grad_weight, grad_bias, x_rows, dy_rows):
    """``grad_weight += dy^T x`` and ``grad_bias += sum(dy)`` in place; return ``dy @ weight``
    (a new device array)."""
    if grad_bias is not None:
        add_column_sums(dy_rows, grad_bias)
    matmul(dy_rows, x_rows, grad_weight, trans_a=True, accumulate=True)
    dx = cuda.device_array((dy_rows.shape[0], weight.shape[1]), dy_rows.dtype)
    matmul(dy_rows, weight, dx)
    return dx
