r"""Optimizers over one flat parameter buffer, one compiled pass per step.

Every optimizer updates a model's ``flat_params`` in place from its
``flat_grads`` (the named parameters of a layer or of
:class:`fastrnn.Sequential` are views into those buffers, so they see the new
values). A step is a single ``@njit`` loop over the arrays that reads each
gradient once and writes each parameter and state entry once.

The update rules, their order of operations and their quirks are those of
``torch.optim`` (single parameter group, the default single-tensor path on the
CPU): results match PyTorch to rounding (about 1e-15 relative in float64), so
a training script can move between the two. Each class's docstring gives its
equations, with :math:`\theta` the parameters, :math:`g` the gradients,
:math:`\gamma` the learning rate, :math:`\lambda` the weight decay and
:math:`t` the step count (1 on the first step).

A ``device="cuda"`` layer's buffers are GPU arrays: then the state arrays
live on the GPU too and each step is one kernel launch, one thread per
parameter, running the same per-entry function as the CPU loop
(:func:`sgd_entry`, :func:`adam_entry`, :func:`rmsprop_entry`,
:func:`adadelta_entry`, :func:`adagrad_entry`, compiled for both targets;
:mod:`fastrnn.kernels.cuda.optim`). Every optimizer here runs there.

Hyperparameters are plain attributes (``opt.lr = 0.01``), read and checked at
each :meth:`~Optimizer.step`, so a schedule just assigns them.
:meth:`~Optimizer.state_dict` is a flat dict of NumPy arrays and scalars (arrays
for an ``.npz``, the rest for JSON); loading it back and continuing gives the
same bits as never having stopped.

Examples
--------
>>> import numpy as np
>>> from fastrnn.training.optimizers import SGD
>>> params = np.array([1.0, -2.0])
>>> grads = np.array([0.5, -0.25])
>>> opt = SGD((params, grads), lr=0.1)
>>> opt.step()
>>> params
array([ 0.95 , -1.975])
"""

import math
import numbers

import numpy as np

from .._validation import check_bool, check_int, describe, is_device_array
from .. import config
from ..kernels.cpu._jit import inline_jit, scan_jit

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad"]


# ---------------------------------------------------------------------------
# Compiled steps. Scalars arrive already rounded to the parameters' dtype, as
# torch rounds a Python scalar to the tensor's dtype inside each op; each line
# mirrors one torch op (so one rounding) of its single-tensor update. Optional
# state arrays that an update does not use are passed as empty arrays.
# ---------------------------------------------------------------------------

def sgd_entry(i, params, grads, buf, neg_lr, momentum, one_minus_dampening, weight_decay,
              use_momentum, first, nesterov, maximize):
    """Entry ``i`` of an SGD step: ``params[i]`` and the momentum buffer ``buf[i]`` updated.

    Plain Python, compiled for the CPU loop (inlined) and as a CUDA device
    function (:mod:`fastrnn.kernels.cuda.optim`): one source for both. The
    optimizers' other ``*_entry`` functions follow the same pattern.
    """
    p, g = params[i], grads[i]
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    if use_momentum:
        if first:
            b = g
        else:
            b = buf[i] * momentum
            b = b + one_minus_dampening * g
        buf[i] = b
        if nesterov:
            g = g + momentum * b
        else:
            g = b
    params[i] = p + neg_lr * g


def adam_entry(i, params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, weight_decay, decay,
               decoupled, lerp_small, lerp_coef, beta2, one_minus_beta2, bias2_sqrt, eps,
               neg_step_size, amsgrad, maximize):
    """Entry ``i`` of an Adam/AdamW step (see :func:`sgd_entry`)."""
    p, g, m = params[i], grads[i], exp_avg[i]
    if maximize:
        g = -g
    if weight_decay != 0:
        if decoupled:
            p = p * decay
        else:
            g = g + weight_decay * p
    m = (m if lerp_small else g) + lerp_coef * (g - m)   # torch.lerp
    v = exp_avg_sq[i] * beta2
    v = v + one_minus_beta2 * g * g
    exp_avg[i] = m
    exp_avg_sq[i] = v
    used = v
    if amsgrad:
        vmax = max_exp_avg_sq[i]
        if not (vmax > v or vmax != vmax):  # torch.maximum: NaN wins
            vmax = v
        max_exp_avg_sq[i] = vmax
        used = vmax
    denom = math.sqrt(used) / bias2_sqrt + eps   # (math: the CUDA target has no np.sqrt)
    params[i] = p + neg_step_size * m / denom


def rmsprop_entry(i, params, grads, square_avg, grad_avg, buf, neg_lr, alpha, one_minus_alpha,
                  lerp_small, lerp_coef, eps, weight_decay, momentum, centered, use_momentum,
                  maximize):
    """Entry ``i`` of an RMSprop step: ``square_avg`` the square average, ``grad_avg`` the
    gradient average (centered), ``buf`` the momentum buffer (see :func:`sgd_entry`)."""
    p, g = params[i], grads[i]
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    s = square_avg[i] * alpha
    s = s + one_minus_alpha * g * g
    square_avg[i] = s
    if centered:
        a = grad_avg[i]
        a = (a if lerp_small else g) + lerp_coef * (g - a)   # torch.lerp
        grad_avg[i] = a
        avg = math.sqrt(s + (-a) * a)
    else:
        avg = math.sqrt(s)
    avg = avg + eps
    if use_momentum:
        b = buf[i] * momentum
        b = b + g / avg
        buf[i] = b
        params[i] = p + neg_lr * b
    else:
        params[i] = p + neg_lr * g / avg


def adadelta_entry(i, params, grads, square_avg, acc_delta, neg_lr, rho, one_minus_rho, eps,
                   weight_decay, maximize):
    """Entry ``i`` of an Adadelta step: ``square_avg`` the square average, ``acc_delta`` the
    accumulated squared delta (see :func:`sgd_entry`)."""
    p, g = params[i], grads[i]
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    s = square_avg[i] * rho
    s = s + one_minus_rho * g * g
    square_avg[i] = s
    u = acc_delta[i]
    std = math.sqrt(s + eps)
    delta = math.sqrt(u + eps)
    delta = delta / std
    delta = delta * g
    u = u * rho
    acc_delta[i] = u + one_minus_rho * delta * delta
    params[i] = p + neg_lr * delta


def adagrad_entry(i, params, grads, state_sum, neg_clr, eps, weight_decay, maximize):
    """Entry ``i`` of an Adagrad step: ``state_sum`` the sum of squared gradients (see
    :func:`sgd_entry`)."""
    p, g = params[i], grads[i]
    if maximize:
        g = -g
    if weight_decay != 0:
        g = g + weight_decay * p
    s = state_sum[i] + g * g
    state_sum[i] = s
    std = math.sqrt(s) + eps
    params[i] = p + neg_clr * g / std


_sgd_entry = inline_jit(sgd_entry)
_adam_entry = inline_jit(adam_entry)
_rmsprop_entry = inline_jit(rmsprop_entry)
_adadelta_entry = inline_jit(adadelta_entry)
_adagrad_entry = inline_jit(adagrad_entry)


@scan_jit
def _sgd_step(params, grads, buf, neg_lr, momentum, one_minus_dampening, weight_decay,
              use_momentum, first, nesterov, maximize):
    for i in range(params.size):
        _sgd_entry(i, params, grads, buf, neg_lr, momentum, one_minus_dampening, weight_decay,
                   use_momentum, first, nesterov, maximize)


@scan_jit
def _adam_step(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, weight_decay, decay,
               decoupled, lerp_small, lerp_coef, beta2, one_minus_beta2, bias2_sqrt, eps,
               neg_step_size, amsgrad, maximize):
    for i in range(params.size):
        _adam_entry(i, params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, weight_decay, decay,
                    decoupled, lerp_small, lerp_coef, beta2, one_minus_beta2, bias2_sqrt, eps,
                    neg_step_size, amsgrad, maximize)


@scan_jit
def _rmsprop_step(params, grads, square_avg, grad_avg, buf, neg_lr, alpha, one_minus_alpha,
                  lerp_small, lerp_coef, eps, weight_decay, momentum, centered, use_momentum,
                  maximize):
    for i in range(params.size):
        _rmsprop_entry(i, params, grads, square_avg, grad_avg, buf, neg_lr, alpha,
                       one_minus_alpha, lerp_small, lerp_coef, eps, weight_decay, momentum,
                       centered, use_momentum, maximize)


@scan_jit
def _adadelta_step(params, grads, square_avg, acc_delta, neg_lr, rho, one_minus_rho, eps,
                   weight_decay, maximize):
    for i in range(params.size):
        _adadelta_entry(i, params, grads, square_avg, acc_delta, neg_lr, rho, one_minus_rho,
                        eps, weight_decay, maximize)


@scan_jit
def _adagrad_step(params, grads, state_sum, neg_clr, eps, weight_decay, maximize):
    for i in range(params.size):
        _adagrad_entry(i, params, grads, state_sum, neg_clr, eps, weight_decay, maximize)


#: The compiled steps by name; :mod:`fastrnn.kernels.cuda.optim` has the GPU's
#: (same names and arguments).
_HOST_STEPS = {"sgd": _sgd_step, "adam": _adam_step, "rmsprop": _rmsprop_step,
               "adadelta": _adadelta_step, "adagrad": _adagrad_step}


# ---------------------------------------------------------------------------
# Argument checks.
# ---------------------------------------------------------------------------

def _real(name, value, low=0.0, high=None, high_open=False):
    """``value`` as a float in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    value = float(value)
    if high is None and low == -np.inf:
        ok, expected = value == value, "(not NaN)"
    elif high is None:
        ok, expected = value >= low, f">= {low:g}"
    elif high_open:
        ok, expected = low <= value < high, f"in [{low:g}, {high:g})"
    else:
        ok, expected = low <= value <= high, f"in [{low:g}, {high:g}]"
    if not ok:  # also NaN
        raise ValueError(f"{name} must be a real number {expected}, got {value!r}")
    return value


def _betas(value):
    """``value`` as a pair of floats in ``[0, 1)``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2) of floats in [0, 1), "
                        f"got {describe(value)}")
    return (_real("betas[0]", value[0], 0.0, 1.0, high_open=True),
            _real("betas[1]", value[1], 0.0, 1.0, high_open=True))


def _flat_buffers(model):
    """``(params, grads)`` of ``model``: two writable, C-contiguous 1-D float arrays of one
    dtype and size that do not overlap."""
    if isinstance(model, (tuple, list)):
        if len(model) != 2:
            raise TypeError(f"model given as a sequence must be a (params, grads) pair of "
                            f"1-D arrays, got a {type(model).__name__} of length {len(model)}")
        pair, names = model, ("model[0] (params)", "model[1] (grads)")
    elif hasattr(model, "flat_params") and hasattr(model, "flat_grads"):
        pair, names = (model.flat_params, model.flat_grads), ("model.flat_params",
                                                                "model.flat_grads")
    else:
        raise TypeError("model must have flat_params and flat_grads attributes (a fastrnn layer "
                        "or Sequential) or be a (params, grads) pair of 1-D arrays, "
                        f"got {describe(model)}")
    on_device = [is_device_array(array) for array in pair]
    if any(on_device):
        return _device_buffers(pair, names, on_device)
    for name, array in zip(names, pair):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {describe(array)}")
        if array.dtype not in config.SUPPORTED_DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {array.dtype}")
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
        if not array.flags.c_contiguous:
            raise ValueError(f"{name} must be contiguous (one flat buffer), got a strided view "
                             f"with strides {array.strides}")
        if not array.flags.writeable:
            raise ValueError(f"{name} must be writable, got a read-only array")
    params, grads = pair
    _check_same_layout(params, grads, names)
    if params.size and np.may_share_memory(params, grads):
        raise ValueError(f"{names[0]} and {names[1]} must be separate buffers, got "
                         "overlapping memory")
    return params, grads


def _check_same_layout(params, grads, names):
    """``grads`` must have the dtype and size of ``params`` (``names``: how to call them)."""
    if grads.dtype != params.dtype:
        raise TypeError(f"{names[1]} must have the dtype of {names[0]}, {params.dtype}, "
                        f"got {grads.dtype}")
    if grads.size != params.size:
        raise ValueError(f"{names[1]} must have the size of {names[0]}, {params.size}, "
                         f"got {grads.size}")


def _device_buffers(pair, names, on_device):
    """:func:`_flat_buffers` for GPU arrays: both must be GPU arrays (adopted in place)."""
    if not all(on_device):
        host = names[on_device.index(False)]
        raise TypeError(f"{names[0]} and {names[1]} must both be numpy arrays or both GPU "
                        f"arrays, got {host} on the host and the other on the GPU")
    from ..kernels.cuda._arrays import adopt, is_c_contiguous
    arrays = [adopt(array) for array in pair]
    for name, array in zip(names, arrays):
        if np.dtype(array.dtype) not in config.SUPPORTED_DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {array.dtype}")
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(array.shape)}")
        if not is_c_contiguous(array):
            raise ValueError(f"{name} must be contiguous (one flat buffer), got a strided GPU "
                             f"array with strides {tuple(array.strides)}")
    params, grads = arrays
    _check_same_layout(params, grads, names)
    return params, grads


def _scalar(value):
    """A state-dict scalar, accepting 0-d arrays and NumPy scalars as from an ``.npz``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------------------
# The optimizers.
# ---------------------------------------------------------------------------

class Optimizer:
    """Base class: one flat parameter buffer, one flat gradient buffer, named state arrays.

    Parameters
    ----------
    model : object with ``flat_params`` and ``flat_grads``, or (params, grads)
        A fastrnn layer or :class:`fastrnn.Sequential` (its buffers are read
        again at each step, so a layer later adopted into a ``Sequential`` is
        still followed), or a pair of writable C-contiguous 1-D arrays of
        float32 or float64 with the same dtype and size. Parameters are
        updated in place.

    Attributes
    ----------
    step_count : int
        Steps taken (:math:`t` after the step).
    state : dict of str to ndarray
        The optimizer's state arrays, same dtype and size as the parameters.
    dtype : numpy.dtype
    size : int

    Notes
    -----
    A subclass lists its hyperparameters in ``_hyper`` (attribute names, all
    floats or bools), the state arrays it may hold in ``_arrays`` (the first
    ``_required`` of them always exist), checks its hyperparameters in
    :meth:`_check` and writes its update in :meth:`_update`.
    """

    _hyper = ()
    _arrays = ()
    _required = 0

    #: Key of this optimizer's compiled step in ``_HOST_STEPS`` and the GPU's ``STEPS``.
    _step_name = None

    def __init__(self, model):
        params, _ = _flat_buffers(model)
        self._model = model
        self.dtype = np.dtype(params.dtype)
        self.size = params.size
        self.step_count = 0
        self.state = {}
        self.on_device = is_device_array(params)
        self._steps = _HOST_STEPS
        if self.on_device:
            from ..kernels.cuda import optim
            self._steps = optim.STEPS

    # -- subclass hooks ------------------------------------------------------
    def _check(self):
        """Validate the hyperparameter attributes, normalising them in place."""

    def _update(self, params, grads):
        raise NotImplementedError

    # -- public API -----------------------------------------------------------
    def step(self):
        """Apply one update from the current gradients (which are left as they are)."""
        self._check()
        params, grads = self._buffers()
        self.step_count += 1
        self._update(params, grads)

    def zero_grad(self):
        """Set every gradient to zero."""
        _, grads = self._buffers()
        if self.on_device:
            from ..kernels.cuda._arrays import fill
            fill(grads, 0)
        else:
            grads[...] = 0

    def state_dict(self):
        """The optimizer's state as a flat dict.

        Returns
        -------
        dict of str to (ndarray, int, float, bool or str)
            ``"type"`` (the class name), ``"dtype"``, ``"size"``,
            ``"step_count"``, every hyperparameter, and a copy of every state
            array. Arrays can go into an ``.npz`` and the rest into JSON;
            :meth:`load_state_dict` takes the union back.
        """
        self._check()   # hyperparameters as plain floats and bools, and valid
        out = {"type": type(self).__name__, "dtype": self.dtype.name, "size": self.size,
               "step_count": self.step_count}
        out.update(self._hyper_values())
        for name in self._arrays:
            if name in self.state:
                out[name] = (self.state[name].copy_to_host() if self.on_device
                             else self.state[name].copy())
        return out

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` (arrays are copied in).

        Parameters
        ----------
        state : dict
            As returned by :meth:`state_dict` of the same optimizer class, for
            parameters of the same dtype and size; scalars may also be 0-d
            arrays (as read back from an ``.npz``).

        Raises
        ------
        ValueError
            The state is of another optimizer, lacks or has unknown keys, or an
            array's shape or a hyperparameter's value is wrong.
        TypeError
            A value of the wrong type, or an array of the wrong dtype.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict (from state_dict()), got {describe(state)}")
        kind = _scalar(state.get("type"))
        if kind != type(self).__name__:
            raise ValueError(f"state must be the state of an optimizer of type "
                             f"{type(self).__name__!r}, got one of type {kind!r}")
        scalars = ("type", "dtype", "size", "step_count") + tuple(self._hyper_values())
        missing = [key for key in scalars + self._arrays[:self._required] if key not in state]
        if missing:
            raise ValueError(f"state lacks the keys {missing} of a {type(self).__name__} state")
        unknown = sorted(set(state) - set(scalars) - set(self._arrays))
        if unknown:
            raise ValueError(f"state has unknown keys {unknown} for a {type(self).__name__} "
                             f"optimizer (expected {sorted(scalars + self._arrays)})")
        dtype = _scalar(state["dtype"])
        if dtype != self.dtype.name:
            raise TypeError(f"state['dtype'] must be {self.dtype.name!r} (the parameters' dtype), "
                            f"got {dtype!r}")
        size = check_int("state['size']", _scalar(state["size"]), 0)
        if size != self.size:
            raise ValueError(f"state['size'] must be {self.size} (the number of parameters), "
                             f"got {size}")
        step_count = check_int("state['step_count']", _scalar(state["step_count"]), 0)
        arrays = {}
        for name in self._arrays:
            if name not in state:
                continue
            array = state[name]
            if not isinstance(array, np.ndarray):
                raise TypeError(f"state[{name!r}] must be a numpy array, got {describe(array)}")
            if array.dtype != self.dtype:
                raise TypeError(f"state[{name!r}] must have dtype {self.dtype}, got {array.dtype}")
            if array.shape != (self.size,):
                raise ValueError(f"state[{name!r}] must have shape {(self.size,)}, "
                                 f"got {array.shape}")
            arrays[name] = array
        saved = self._hyper_values()
        try:
            self._set_hyper({key: _scalar(state[key]) for key in saved})
            self._check()
        except (TypeError, ValueError) as error:
            self._set_hyper(saved)
            raise type(error)(f"state holds a bad hyperparameter: {error}") from None
        self.step_count = step_count
        self.state = {name: np.array(array, dtype=self.dtype, order="C", copy=True)
                      for name, array in arrays.items()}
        if self.on_device:
            from ..kernels.cuda._arrays import upload
            self.state = {name: upload(array) for name, array in self.state.items()}

    def __repr__(self):
        values = ", ".join(f"{key}={value!r}" for key, value in self._hyper_values().items())
        return f"{type(self).__name__}({values})"

    # -- helpers -------------------------------------------------------------
    def _hyper_values(self):
        return {name: getattr(self, name) for name in self._hyper}

    def _set_hyper(self, values):
        for name, value in values.items():
            setattr(self, name, value)

    def _buffers(self):
        params, grads = _flat_buffers(self._model)
        if is_device_array(params) != self.on_device:
            where = "GPU" if self.on_device else "host"
            raise ValueError(f"the model's buffers moved since this {type(self).__name__} was "
                             f"built: its state is for {where} buffers")
        if params.dtype != self.dtype or params.size != self.size:
            raise ValueError(f"the model's buffers changed since this {type(self).__name__} was "
                             f"built: it holds state for {self.size} parameters of {self.dtype}, "
                             f"the model now has {params.size} of {params.dtype}")
        return params, grads

    def _array(self, name, fill=0.0):
        """State array ``name``, created filled with ``fill`` when missing."""
        if name not in self.state:
            if self.on_device:
                from ..kernels.cuda._arrays import full
                self.state[name] = full(self.size, fill, self.dtype)
            else:
                self.state[name] = np.full(self.size, fill, self.dtype)
        return self.state[name]

    def _cast(self, value):
        return self.dtype.type(value)

    def _lerp_weight(self, weight):
        """``torch.lerp``'s two forms: ``(True, w)`` for ``a + w (b - a)`` when ``|w| < 0.5``,
        else ``(False, w - 1)`` for ``b + (w - 1)(b - a)``, in the parameters' dtype."""
        weight = self._cast(weight)
        small = bool(abs(weight) < 0.5)
        return small, weight if small else weight - self._cast(1)

    def _empty(self):
        if self.on_device:
            from numba import cuda
            return cuda.device_array(0, self.dtype)
        return np.empty(0, self.dtype)


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    .. math::

        g_t &\leftarrow \pm g + \lambda \theta_{t-1}
              \qquad (- \text{ when maximizing}) \\
        b_t &= \begin{cases} g_t & t = 1 \\
                             \mu b_{t-1} + (1 - \tau) g_t & t > 1 \end{cases} \\
        g_t &\leftarrow g_t + \mu b_t \text{ (nesterov) or } b_t
              \qquad (\text{when } \mu \ne 0) \\
        \theta_t &= \theta_{t-1} - \gamma g_t

    As in torch, the momentum buffer starts as the first gradient itself,
    without dampening.

    Parameters
    ----------
    model : layer, Sequential or (params, grads)
        See :class:`Optimizer`.
    lr : float >= 0
        Learning rate :math:`\gamma`.
    momentum : float >= 0, default 0
        :math:`\mu`.
    dampening : float, default 0
        :math:`\tau`.
    weight_decay : float >= 0, default 0
        L2 penalty :math:`\lambda`.
    nesterov : bool, default False
        Nesterov momentum; requires ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend the objective instead of descending.

    Notes
    -----
    State: ``momentum_buffer`` (from the first step with ``momentum != 0``).
    """

    _step_name = "sgd"
    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    _arrays = ("momentum_buffer",)

    def __init__(self, model, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
        super().__init__(model)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self._check()

    def _check(self):
        self.lr = _real("lr", self.lr)
        self.momentum = _real("momentum", self.momentum)
        self.dampening = _real("dampening", self.dampening, low=-np.inf)
        self.weight_decay = _real("weight_decay", self.weight_decay)
        self.nesterov = check_bool("nesterov", self.nesterov)
        self.maximize = check_bool("maximize", self.maximize)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={self.momentum!r} and dampening={self.dampening!r}")

    def _update(self, params, grads):
        c = self._cast
        use_momentum = self.momentum != 0
        first = use_momentum and "momentum_buffer" not in self.state
        buf = self._array("momentum_buffer") if use_momentum else self._empty()
        step = self._steps["sgd"]
        step(params, grads, buf, c(-self.lr), c(self.momentum), c(1 - self.dampening),
             c(self.weight_decay), use_momentum, first, self.nesterov, self.maximize)


class Adam(Optimizer):
    r"""Adam, as ``torch.optim.Adam`` (with ``amsgrad``).

    .. math::

        g_t &\leftarrow \pm g + \lambda \theta_{t-1}
              \qquad (- \text{ when maximizing}) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ (amsgrad) or } v_t \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
                    \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    with :math:`m_0 = v_0 = \hat v_0 = 0`.

    Parameters
    ----------
    model : layer, Sequential or (params, grads)
        See :class:`Optimizer`.
    lr : float >= 0, default 1e-3
        :math:`\gamma`.
    betas : (float, float) in [0, 1), default (0.9, 0.999)
        :math:`(\beta_1, \beta_2)`.
    eps : float >= 0, default 1e-8
        :math:`\epsilon`.
    weight_decay : float >= 0, default 0
        L2 penalty :math:`\lambda`, added to the gradient (see :class:`AdamW`
        for decoupled decay).
    amsgrad : bool, default False
        Normalise by the running maximum of :math:`v_t`.
    maximize : bool, default False
        Ascend the objective instead of descending.

    Notes
    -----
    State: ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`) and, with
    amsgrad, ``max_exp_avg_sq`` (:math:`\hat v`). In the state dict the betas
    are the scalars ``beta1`` and ``beta2``.
    """

    _step_name = "adam"
    _hyper = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
    _arrays = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _required = 2
    _decoupled = False

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        super().__init__(model)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad, self.maximize = weight_decay, amsgrad, maximize
        self._check()
        self._array("exp_avg")
        self._array("exp_avg_sq")

    def _check(self):
        self.lr = _real("lr", self.lr)
        self.betas = _betas(self.betas)
        self.eps = _real("eps", self.eps)
        self.weight_decay = _real("weight_decay", self.weight_decay)
        self.amsgrad = check_bool("amsgrad", self.amsgrad)
        self.maximize = check_bool("maximize", self.maximize)

    def _hyper_values(self):
        values = {}
        for name, value in super()._hyper_values().items():
            if name == "betas":
                values["beta1"], values["beta2"] = value
            else:
                values[name] = value
        return values

    def _set_hyper(self, values):
        values = dict(values)
        values["betas"] = (values.pop("beta1"), values.pop("beta2"))
        super()._set_hyper(values)

    def _update(self, params, grads):
        c = self._cast
        beta1, beta2 = self.betas
        t = float(self.step_count)   # torch keeps the step as a float
        step_size = self.lr / (1 - beta1 ** t)
        bias2_sqrt = (1 - beta2 ** t) ** 0.5
        lerp_small, lerp_coef = self._lerp_weight(1 - beta1)
        vmax = self._array("max_exp_avg_sq") if self.amsgrad else self._empty()
        step = self._steps["adam"]
        step(params, grads, self.state["exp_avg"], self.state["exp_avg_sq"], vmax,
             c(self.weight_decay), c(1 - self.lr * self.weight_decay), self._decoupled,
             lerp_small, lerp_coef, c(beta2), c(1 - beta2), c(bias2_sqrt), c(self.eps),
             c(-step_size), self.amsgrad, self.maximize)


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    As :class:`Adam`, except that the decay multiplies the parameters instead
    of entering the gradient:

    .. math::

        \theta_{t-1} &\leftarrow \theta_{t-1} (1 - \gamma \lambda) \\
        g_t &\leftarrow \pm g \qquad (- \text{ when maximizing})

    then the moments and the update of :class:`Adam`.

    Parameters
    ----------
    model : layer, Sequential or (params, grads)
        See :class:`Optimizer`.
    lr : float >= 0, default 1e-3
    betas : (float, float) in [0, 1), default (0.9, 0.999)
    eps : float >= 0, default 1e-8
    weight_decay : float >= 0, default 1e-2
        Decoupled decay :math:`\lambda`.
    amsgrad : bool, default False
    maximize : bool, default False
    """

    _decoupled = True

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(model, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop`` (centered and with momentum).

    .. math::

        g_t &\leftarrow \pm g + \lambda \theta_{t-1}
              \qquad (- \text{ when maximizing}) \\
        v_t &= \alpha v_{t-1} + (1 - \alpha) g_t^2 \\
        \bar g_t &= \alpha \bar g_{t-1} + (1 - \alpha) g_t \qquad \text{(centered)} \\
        d_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \text{ (centered) or }
               \sqrt{v_t} + \epsilon \\
        b_t &= \mu b_{t-1} + g_t / d_t, \quad \theta_t = \theta_{t-1} - \gamma b_t
               \qquad (\mu > 0) \\
        \theta_t &= \theta_{t-1} - \gamma g_t / d_t \qquad (\mu = 0)

    with :math:`v_0 = \bar g_0 = b_0 = 0`.

    Parameters
    ----------
    model : layer, Sequential or (params, grads)
        See :class:`Optimizer`.
    lr : float >= 0, default 1e-2
        :math:`\gamma`.
    alpha : float >= 0, default 0.99
        Smoothing constant :math:`\alpha`.
    eps : float >= 0, default 1e-8
        :math:`\epsilon`, added outside the square root.
    weight_decay : float >= 0, default 0
        L2 penalty :math:`\lambda`.
    momentum : float >= 0, default 0
        :math:`\mu`.
    centered : bool, default False
        Normalise by an estimate of the gradient's variance.
    maximize : bool, default False
        Ascend the objective instead of descending.

    Notes
    -----
    State: ``square_avg`` (:math:`v`), and ``momentum_buffer`` (:math:`b`)
    and ``grad_avg`` (:math:`\bar g`) when used.
    """

    _step_name = "rmsprop"
    _hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")
    _arrays = ("square_avg", "momentum_buffer", "grad_avg")
    _required = 1

    def __init__(self, model, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        super().__init__(model)
        self.lr, self.alpha, self.eps, self.weight_decay = lr, alpha, eps, weight_decay
        self.momentum, self.centered, self.maximize = momentum, centered, maximize
        self._check()
        self._array("square_avg")

    def _check(self):
        self.lr = _real("lr", self.lr)
        self.alpha = _real("alpha", self.alpha)
        self.eps = _real("eps", self.eps)
        self.weight_decay = _real("weight_decay", self.weight_decay)
        self.momentum = _real("momentum", self.momentum)
        self.centered = check_bool("centered", self.centered)
        self.maximize = check_bool("maximize", self.maximize)

    def _update(self, params, grads):
        c = self._cast
        use_momentum = self.momentum > 0
        buf = self._array("momentum_buffer") if use_momentum else self._empty()
        grad_avg = self._array("grad_avg") if self.centered else self._empty()
        lerp_small, lerp_coef = self._lerp_weight(1 - self.alpha)
        step = self._steps["rmsprop"]
        step(params, grads, self.state["square_avg"], grad_avg, buf, c(-self.lr),
             c(self.alpha), c(1 - self.alpha), lerp_small, lerp_coef, c(self.eps),
             c(self.weight_decay), c(self.momentum), self.centered, use_momentum,
             self.maximize)


class Adadelta(Optimizer):
    r"""Adadelta, as ``torch.optim.Adadelta``.

    .. math::

        g_t &\leftarrow \pm g + \lambda \theta_{t-1}
              \qquad (- \text{ when maximizing}) \\
        v_t &= \rho v_{t-1} + (1 - \rho) g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        u_t &= \rho u_{t-1} + (1 - \rho) \Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma \Delta_t

    with :math:`v_0 = u_0 = 0`.

    Parameters
    ----------
    model : layer, Sequential or (params, grads)
        See :class:`Optimizer`.
    lr : float >= 0, default 1.0
        :math:`\gamma`, scaling :math:`\Delta_t`.
    rho : float in [0, 1], default 0.9
        :math:`\rho`.
    eps : float >= 0, default 1e-6
        :math:`\epsilon`.
    weight_decay : float >= 0, default 0
        L2 penalty :math:`\lambda`.
    maximize : bool, default False
        Ascend the objective instead of descending.

    Notes
    -----
    State: ``square_avg`` (:math:`v`) and ``acc_delta`` (:math:`u`).
    """

    _step_name = "adadelta"
    _hyper = ("lr", "rho", "eps", "weight_decay", "maximize")
    _arrays = ("square_avg", "acc_delta")
    _required = 2

    def __init__(self, model, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize=False):
        super().__init__(model)
        self.lr, self.rho, self.eps = lr, rho, eps
        self.weight_decay, self.maximize = weight_decay, maximize
        self._check()
        self._array("square_avg")
        self._array("acc_delta")

    def _check(self):
        self.lr = _real("lr", self.lr)
        self.rho = _real("rho", self.rho, 0.0, 1.0)
        self.eps = _real("eps", self.eps)
        self.weight_decay = _real("weight_decay", self.weight_decay)
        self.maximize = check_bool("maximize", self.maximize)

    def _update(self, params, grads):
        c = self._cast
        step = self._steps["adadelta"]
        step(params, grads, self.state["square_avg"], self.state["acc_delta"],
             c(-self.lr), c(self.rho), c(1 - self.rho), c(self.eps),
             c(self.weight_decay), self.maximize)


class Adagrad(Optimizer):
    r"""Adagrad, as ``torch.optim.Adagrad``.

    .. math::

        g_t &\leftarrow \pm g + \lambda \theta_{t-1}
              \qquad (- \text{ when maximizing}) \\
        \tilde\gamma_t &= \frac{\gamma}{1 + (t - 1) \eta} \\
        s_t &= s_{t-1} + g_t^2 \\
        \theta_t &= \theta_{t-1} - \tilde\gamma_t \frac{g_t}{\sqrt{s_t} + \epsilon}

    with :math:`s_0` the ``initial_accumulator_value``.

    Parameters
    ----------
    model : layer, Sequential or (params, grads)
        See :class:`Optimizer`.
    lr : float >= 0, default 1e-2
        :math:`\gamma`.
    lr_decay : float >= 0, default 0
        :math:`\eta`.
    weight_decay : float >= 0, default 0
        L2 penalty :math:`\lambda`.
    initial_accumulator_value : float >= 0, default 0
        :math:`s_0`; used when the optimizer is built.
    eps : float >= 0, default 1e-10
        :math:`\epsilon`.
    maximize : bool, default False
        Ascend the objective instead of descending.

    Notes
    -----
    State: ``sum`` (:math:`s`).
    """

    _step_name = "adagrad"
    _hyper = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")
    _arrays = ("sum",)
    _required = 1

    def __init__(self, model, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False):
        super().__init__(model)
        self.lr, self.lr_decay, self.weight_decay = lr, lr_decay, weight_decay
        self.initial_accumulator_value, self.eps = initial_accumulator_value, eps
        self.maximize = maximize
        self._check()
        self._array("sum", self.initial_accumulator_value)

    def _check(self):
        self.lr = _real("lr", self.lr)
        self.lr_decay = _real("lr_decay", self.lr_decay)
        self.weight_decay = _real("weight_decay", self.weight_decay)
        self.initial_accumulator_value = _real("initial_accumulator_value",
                                               self.initial_accumulator_value)
        self.eps = _real("eps", self.eps)
        self.maximize = check_bool("maximize", self.maximize)

    def _update(self, params, grads):
        c = self._cast
        clr = self.lr / (1 + (float(self.step_count) - 1) * self.lr_decay)
        step = self._steps["adagrad"]
        step(params, grads, self.state["sum"], c(-clr), c(self.eps),
             c(self.weight_decay), self.maximize)
