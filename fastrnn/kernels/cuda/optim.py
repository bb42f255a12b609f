"""Optimizer steps on the GPU: one kernel launch per step, one thread per parameter.

Each kernel runs the per-entry function of :mod:`fastrnn.training.optimizers`
(:func:`~fastrnn.training.optimizers.sgd_entry`,
:func:`~fastrnn.training.optimizers.adam_entry`,
:func:`~fastrnn.training.optimizers.rmsprop_entry`,
:func:`~fastrnn.training.optimizers.adadelta_entry`,
:func:`~fastrnn.training.optimizers.adagrad_entry`) for its thread's entry,
compiled here as a CUDA device function from the same Python source the CPU
loop inlines. The launchers in :data:`STEPS` take the CPU steps' arguments, in
the same order, so :class:`~fastrnn.training.optimizers.Optimizer` calls either
without knowing which. Every entry is updated by one thread on its own: no
reduction, so results are exact and the same on every run.
"""

from numba import cuda

from ...training.optimizers import (adadelta_entry, adagrad_entry, adam_entry, rmsprop_entry,
                                    sgd_entry)
from ._jit import kernel

_sgd_entry = cuda.jit(device=True)(sgd_entry)
_adam_entry = cuda.jit(device=True)(adam_entry)
_rmsprop_entry = cuda.jit(device=True)(rmsprop_entry)
_adadelta_entry = cuda.jit(device=True)(adadelta_entry)
_adagrad_entry = cuda.jit(device=True)(adagrad_entry)


@kernel("void({f}[::1], {f}[::1], {f}[::1], {f}, {f}, {f}, {f}, boolean, boolean, boolean, "
        "boolean)")
def _sgd_step(params, grads, buf, neg_lr, momentum, one_minus_dampening, weight_decay,
              use_momentum, first, nesterov, maximize):
    i = cuda.grid(1)
    if i < params.shape[0]:
        _sgd_entry(i, params, grads, buf, neg_lr, momentum, one_minus_dampening, weight_decay,
                   use_momentum, first, nesterov, maximize)


@kernel("void({f}[::1], {f}[::1], {f}[::1], {f}[::1], {f}[::1], {f}, {f}, boolean, boolean, "
        "{f}, {f}, {f}, {f}, {f}, {f}, boolean, boolean)")
def _adam_step(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, weight_decay, decay,
               decoupled, lerp_small, lerp_coef, beta2, one_minus_beta2, bias2_sqrt, eps,
               neg_step_size, amsgrad, maximize):
    i = cuda.grid(1)
    if i < params.shape[0]:
        _adam_entry(i, params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, weight_decay, decay,
                    decoupled, lerp_small, lerp_coef, beta2, one_minus_beta2, bias2_sqrt, eps,
                    neg_step_size, amsgrad, maximize)


@kernel("void({f}[::1], {f}[::1], {f}[::1], {f}[::1], {f}[::1], {f}, {f}, {f}, boolean, {f}, "
        "{f}, {f}, {f}, boolean, boolean, boolean)")
def _rmsprop_step(params, grads, square_avg, grad_avg, buf, neg_lr, alpha, one_minus_alpha,
                  lerp_small, lerp_coef, eps, weight_decay, momentum, centered, use_momentum,
                  maximize):
    i = cuda.grid(1)
    if i < params.shape[0]:
        _rmsprop_entry(i, params, grads, square_avg, grad_avg, buf, neg_lr, alpha,
                       one_minus_alpha, lerp_small, lerp_coef, eps, weight_decay, momentum,
                       centered, use_momentum, maximize)


@kernel("void({f}[::1], {f}[::1], {f}[::1], {f}[::1], {f}, {f}, {f}, {f}, {f}, boolean)")
def _adadelta_step(params, grads, square_avg, acc_delta, neg_lr, rho, one_minus_rho, eps,
                   weight_decay, maximize):
    i = cuda.grid(1)
    if i < params.shape[0]:
        _adadelta_entry(i, params, grads, square_avg, acc_delta, neg_lr, rho, one_minus_rho,
                        eps, weight_decay, maximize)


@kernel("void({f}[::1], {f}[::1], {f}[::1], {f}, {f}, {f}, boolean)")
def _adagrad_step(params, grads, state_sum, neg_clr, eps, weight_decay, maximize):
    i = cuda.grid(1)
    if i < params.shape[0]:
        _adagrad_entry(i, params, grads, state_sum, neg_clr, eps, weight_decay, maximize)


def _launcher(step):
    """The GPU twin of the CPU step of the same name: same arguments, one thread per entry."""
    def launch(params, *args):
        if params.size:
            step.over(params.size, params, *args)
    launch.__name__ = step.function.__name__.lstrip("_")
    launch.__doc__ = (f"GPU twin of ``fastrnn.training.optimizers.{step.function.__name__}`` "
                      "(same arguments).")
    return launch


#: The steps that run on the GPU, by the names of ``optimizers._HOST_STEPS``.
STEPS = {"sgd": _launcher(_sgd_step), "adam": _launcher(_adam_step),
         "rmsprop": _launcher(_rmsprop_step), "adadelta": _launcher(_adadelta_step),
         "adagrad": _launcher(_adagrad_step)}
