"""What every CUDA scan shares: the GEMMs around the scan, column copies, and
the small per-step kernels of the backward pass.

The scans take device arrays where the CPU scans take NumPy arrays (the
layer's weights and gradients are views of its device-resident flat buffers;
``x``, ``y``, ``dy``, ``dx`` and the states are device arrays) and work in
place: weight gradients and ``dx`` are accumulated by the GEMMs themselves
(``accumulate=True``). Only ``lengths`` (B ints) and ``error_norms`` stay on
the host. Scans see only their own direction's columns of ``y``/``dy``: a
bidirectional layer's columns are copied out and back by a kernel
(:func:`output_columns`, :func:`store_columns`), so no step kernel needs the
offset.
"""

import numpy as np
from numba import cuda

from ...cells.guard import guard_row as cells_guard_row
from ..cpu import _common as cpu_common
from ._arrays import upload, zeros
from ._gemm import add_column_sums, add_row, columns, matmul
from ._jit import kernel, row_col

#: :func:`fastrnn.kernels.cpu._common.step_slots` as plain Python, for the host loop.
step_slots = cpu_common.step_slots.py_func


def rows(array):
    """A C-contiguous (T, B, F) device array as (T*B, F) rows."""
    return array.reshape(array.shape[0] * array.shape[1], array.shape[2])


def states(initial, steps, keep_tape, reverse):
    """Device twin of :func:`fastrnn.kernels.cpu._common.state_buffer` (same slots)."""
    slots, first = cpu_common.state_slots(steps, keep_tape, reverse)
    buffer = cuda.device_array((slots,) + tuple(initial.shape), initial.dtype)
    if initial.size:
        buffer[first].copy_to_device(initial)
    return buffer


#: The (T, B, F) slice of a taped state buffer holding the state entering each
#: step (plain slicing, so the CPU helper serves device arrays too).
entering = cpu_common.entering_states
#: Whether a scan input holds token ids, (T, B, 1) int64.
is_tokens = cpu_common.is_tokens


def leaving(buffer, reverse):
    """The (T, B, F) slice of a taped state buffer: the state leaving each step."""
    return buffer[:-1] if reverse else buffer[1:]


def output_columns(y, col0, width):
    """This direction's columns ``y[:, :, col0:col0 + width]`` of a (T, B, F) device array:
    ``y`` itself when they are all of it, else a C-contiguous device copy."""
    if col0 == 0 and width == y.shape[2]:
        return y
    return columns(rows(y), col0, width).reshape(y.shape[0], y.shape[1], width)


@kernel("void({f}[:, ::1], int64, {f}[:, ::1])")
def _put_columns(source, first, target):
    index = cuda.grid(1)
    cols = source.shape[1]
    if index >= source.shape[0] * cols:
        return
    r, c = row_col(index, cols)
    target[r, first + c] = source[r, c]


def store_columns(y, part, col0):
    """Write ``part`` (from :func:`output_columns`) back into ``y[:, :, col0:]`` unless it
    is ``y`` itself."""
    if part is y or part.size == 0:
        return
    source = rows(part)
    _put_columns.over(source.size, source, col0, rows(y))


# ------------------------------------------------------------------ input side
@kernel("void(int64[::1], {f}[:, ::1], {f}[::1], boolean, {f}[:, ::1])")
def _gather_columns(ids, weight_ih, bias, has_bias, out):
    index = cuda.grid(1)
    gates = out.shape[1]
    if index >= out.shape[0] * gates:
        return
    r, g = row_col(index, gates)
    value = weight_ih[g, ids[r]]
    out[r, g] = value + bias[g] if has_bias else value


@kernel("void(int64[::1], {f}[:, ::1], {f}[:, ::1], {f}[:, ::1])")
def _scatter_columns(ids, d_rows, columns, grad):
    # One thread per gate row g owns column g of ``columns`` (V, G): rows are
    # added in order, so the sums are deterministic without atomics.
    g = cuda.grid(1)
    if g >= d_rows.shape[1]:
        return
    for v in range(columns.shape[0]):
        columns[v, g] = 0
    for r in range(ids.shape[0]):
        columns[ids[r], g] += d_rows[r, g]
    for v in range(columns.shape[0]):
        grad[g, v] += columns[v, g]


def input_projection(x, weight_ih, bias):
    """Pre-activations from the input for all steps, ``x @ W_ih^T + bias``, on the device.

    Parameters
    ----------
    x : device array, shape (T, B, I), or token ids (T, B, 1) int64
        For token ids the product is a gather of columns of ``weight_ih``.
    weight_ih : device array, shape (G, I)
    bias : device array of shape (G,) or None

    Returns
    -------
    device array, shape (T, B, G)
    """
    steps, batch, _ = x.shape
    gates = weight_ih.shape[0]
    out = cuda.device_array((steps * batch, gates), weight_ih.dtype)
    if is_tokens(x):
        has_bias = bias is not None
        bias_d = bias if has_bias else zeros(1, weight_ih.dtype)
        _gather_columns.over(steps * batch * gates, rows(x).reshape(steps * batch), weight_ih,
                             bias_d, has_bias, out)
    else:
        matmul(rows(x), weight_ih, out, trans_b=True)
        if bias is not None:
            add_row(out, bias)
    return out.reshape(steps, batch, gates)


def accumulate_outer(grad, d_pre, inputs):
    """``grad += sum_t d_pre[t]^T inputs[t]``, in place (device arrays; (T, B, *) operands)."""
    matmul(rows(d_pre), rows(inputs), grad, trans_a=True, accumulate=True)


def accumulate_input_grads(d_pre, x, weight_ih, grad_weight_ih, dx):
    """``grad_weight_ih += sum_t d_pre[t]^T x[t]`` and ``dx += d_pre @ W_ih``.

    For token ids (:func:`is_tokens`) the first is a deterministic scatter into
    the tokens' columns and there is no ``dx``. All device arrays, updated in
    place; ``dx`` None: no input gradient.
    """
    if is_tokens(x):
        steps, batch, _ = x.shape
        gates, vocab = grad_weight_ih.shape
        scratch = cuda.device_array((vocab, gates), d_pre.dtype)
        _scatter_columns.over(gates, rows(x).reshape(steps * batch), rows(d_pre), scratch,
                              grad_weight_ih)
        return
    accumulate_outer(grad_weight_ih, d_pre, x)
    if dx is not None:
        matmul(rows(d_pre), weight_ih, rows(dx), accumulate=True)


def add_bias_gradient(d_pre, *targets):
    """Add ``d_pre`` (T, B, G) summed over time and batch to each device ``target``."""
    for target in targets:
        add_column_sums(rows(d_pre), target)


# --------------------------------------------------------- backward step kernels
@kernel("void({f}[:, ::1], {f}[:, :, ::1], int64, int64[::1], {f}[:, ::1])")
def _output_grad(dh, dy, t, lengths, dh_total):
    index = cuda.grid(1)
    width = dh.shape[1]
    if index >= dh.shape[0] * width:
        return
    b, j = row_col(index, width)
    if t < lengths[b]:
        dh_total[b, j] = dh[b, j] + dy[t, b, j]
    else:
        dh_total[b, j] = 0


#: The error guard on one row (:func:`fastrnn.cells.guard.guard_row`, the CPU scans'
#: source too), shared by :func:`_guard` and the persistent scans (:mod:`.persistent`).
guard_row = cuda.jit(device=True)(cells_guard_row)


@kernel("void({f}[:, ::1], int64, int64[::1], float64, float64[:, ::1], boolean)")
def _guard(dh_total, t, lengths, clip, norms, record):
    b = cuda.grid(1)
    if b >= dh_total.shape[0] or t >= lengths[b]:
        return
    guard_row(dh_total[b], t, b, clip, norms, record)


@kernel("void({f}[:, ::1], {f}[:, ::1], int64, int64[::1])")
def _copy_valid(target, source, t, lengths):
    index = cuda.grid(1)
    width = target.shape[1]
    if index >= target.shape[0] * width:
        return
    b, j = row_col(index, width)
    if t < lengths[b]:
        target[b, j] = source[b, j]


@kernel("void({f}[:, ::1], {f}[:, ::1], int64, int64[::1])")
def _masked_copy(source, target, t, lengths):
    index = cuda.grid(1)
    width = target.shape[1]
    if index >= target.shape[0] * width:
        return
    b, j = row_col(index, width)
    if t < lengths[b]:
        target[b, j] = source[b, j]
    else:
        target[b, j] = 0


def copy_valid(target, source, t, lengths):
    """``target[b] = source[b]`` for the sequences still running at step ``t`` (device)."""
    _copy_valid.over(target.shape[0] * target.shape[1], target, source, t, lengths)


def masked_copy(source, target, t, lengths):
    """``target[b] = source[b]`` where step ``t`` is valid for ``b``, else 0 (device)."""
    _masked_copy.over(target.shape[0] * target.shape[1], source, target, t, lengths)


class OutputGrad:
    """The gradient reaching ``h_t`` at each backward step, with the error guard.

    Parameters
    ----------
    dy : device array, shape (T, B, D*P)
        Gradient of the layer output; this direction's columns are used.
    col0, width : int
        This direction's columns of ``dy``.
    lengths : device array of int64
    error_clip : float or None
    error_norms : host ndarray of float64, shape (T, B), or None
        Written (valid steps) by :meth:`finish`.
    """

    def __init__(self, dy, col0, width, lengths, error_clip, error_norms):
        self.dy = output_columns(dy, col0, width)
        self.lengths = lengths
        self.clip = 0.0 if error_clip is None else float(error_clip)
        self.host_norms = error_norms
        self.record = error_norms is not None
        self.norms = upload(error_norms if self.record else np.zeros((1, 1)))
        #: Whether the guard does anything (clips, or records norms).
        self.guarded = self.clip > 0.0 or self.record

    def total(self, dh, t, out):
        """``out = dh + dy[t]`` for valid sequences (0 for the others), then guarded:
        each valid row's 2-norm recorded and, above ``error_clip``, scaled down to it."""
        batch, width = dh.shape
        _output_grad.over(batch * width, dh, self.dy, t, self.lengths, out)
        if self.guarded:
            _guard.over(batch, out, t, self.lengths, self.clip, self.norms, self.record)

    def finish(self):
        """Copy the recorded norms back into the caller's ``error_norms``."""
        if self.record:
            self.host_norms[...] = self.norms.copy_to_host()
