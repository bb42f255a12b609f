"""Optimizer steps on the GPU: one kernel launch per step, one thread per parameter.

Each kernel runs the per-element update function of
:mod:`fastrnn.training.optimizers` (:func:`~fastrnn.training.optimizers.sgd_update`,
:func:`~fastrnn.training.optimizers.adam_update`), compiled here as a CUDA
device function from the same Python source the CPU loop inlines. The
launchers in :data:`STEPS` take the CPU steps' arguments, in the same order,
so :class:`~fastrnn.training.optimizers.Optimizer` calls either without
knowing which. Every entry is updated by one thread on its own: no
reduction, so results are exact and the same on every run.
"""

from numba import cuda

from ...training.optimizers import adam_update, sgd_update
from ._jit import kernel

_sgd_update = cuda.jit(device=True)(sgd_update)
_adam_update = cuda.jit(device=True)(adam_update)


@kernel("void({f}[::1], {f}[::1], {f}[::1], {f}, {f}, {f}, {f}, boolean, boolean, boolean, "
        "boolean)")
def _sgd_step(params, grads, buf, neg_lr, momentum, one_minus_dampening, weight_decay,
              use_momentum, first, nesterov, maximize):
    i = cuda.grid(1)
    if i >= params.shape[0]:
        return
    b = buf[i] if use_momentum else params[i]   # (b unused without momentum)
    p, b = _sgd_update(params[i], grads[i], b, neg_lr, momentum, one_minus_dampening,
                       weight_decay, use_momentum, first, nesterov, maximize)
    if use_momentum:
        buf[i] = b
    params[i] = p


@kernel("void({f}[::1], {f}[::1], {f}[::1], {f}[::1], {f}[::1], {f}, {f}, boolean, boolean, "
        "{f}, {f}, {f}, {f}, {f}, {f}, boolean, boolean)")
def _adam_step(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, weight_decay, decay,
               decoupled, lerp_small, lerp_coef, beta2, one_minus_beta2, bias2_sqrt, eps,
               neg_step_size, amsgrad, maximize):
    i = cuda.grid(1)
    if i >= params.shape[0]:
        return
    vmax = max_exp_avg_sq[i] if amsgrad else params[i]   # (unused without amsgrad)
    p, m, v, vmax = _adam_update(params[i], grads[i], exp_avg[i], exp_avg_sq[i], vmax,
                                 weight_decay, decay, decoupled, lerp_small, lerp_coef, beta2,
                                 one_minus_beta2, bias2_sqrt, eps, neg_step_size, amsgrad,
                                 maximize)
    exp_avg[i] = m
    exp_avg_sq[i] = v
    if amsgrad:
        max_exp_avg_sq[i] = vmax
    params[i] = p


def sgd_step(params, *args):
    """GPU twin of ``fastrnn.training.optimizers._sgd_step`` (same arguments)."""
    if params.size:
        _sgd_step.over(params.size, params, *args)


def adam_step(params, *args):
    """GPU twin of ``fastrnn.training.optimizers._adam_step`` (same arguments)."""
    if params.size:
        _adam_step.over(params.size, params, *args)


#: The steps that run on the GPU, by the names of ``optimizers._HOST_STEPS``.
STEPS = {"sgd": sgd_step, "adam": adam_step}
