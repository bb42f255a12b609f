"""Dense (fully connected) layer on the GPU: the backend's GEMM and column sums.

Same entry points as :mod:`fastrnn.kernels.cpu.dense`; NumPy arrays in and out.
"""

from numba import cuda

from ._common import upload
from ._gemm import add_row, column_sums, matmul


def forward(weight, bias, x_rows):
    """``x_rows @ weight.T + bias`` for (N, in) rows; returns a new (N, out) host array."""
    out = cuda.device_array((x_rows.shape[0], weight.shape[0]), x_rows.dtype)
    matmul(upload(x_rows), upload(weight), out, trans_b=True)
    if bias is not None:
        add_row(out, upload(bias))
    return out.copy_to_host()


def backward(weight, grad_weight, grad_bias, x_rows, dy_rows):
    """Accumulate ``grad_weight += dy^T x`` and ``grad_bias += sum(dy)``; return ``dy @ weight``."""
    dy = upload(dy_rows)
    if grad_bias is not None:
        grad_bias += column_sums(dy).copy_to_host()
    product = cuda.device_array(grad_weight.shape, dy.dtype)
    matmul(dy, upload(x_rows), product, trans_a=True)
    grad_weight += product.copy_to_host()
    dx = cuda.device_array((dy.shape[0], weight.shape[1]), dy.dtype)
    matmul(dy, upload(weight), dx)
    return dx.copy_to_host()
