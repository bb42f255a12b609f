r"""Spectral control of recurrent weights: projection, an update budget, Jacobian bounds.

Exploding gradients through time come from products of one-step state
Jacobians :math:`J_t = \partial s_t / \partial s_{t-1}`. Their norms are
controlled by the spectral norm (largest singular value) :math:`\sigma(W_{hh})`
of every recurrent matrix ``weight_hh*``. This module

* caps :math:`\sigma(W_{hh})` by rescaling (:func:`project_spectral`),
* keeps it capped through training without an SVD per step, by bounding each
  update with Weyl's inequality (:class:`SpectralBudget`),
* bounds :math:`\|J_t\|_2` from the weights, and measures it along a trajectory
  (:func:`lipschitz_bound`).

Norms are spectral (:math:`\ell_2` operator) norms unless marked :math:`F`
(Frobenius) or :math:`\infty` (largest absolute entry of a vector).

What a cap on :math:`\sigma(W_{hh})` bounds
-------------------------------------------
The GRU and LSTM stack their gate blocks, :math:`W_{hh} = [W_1; \dots; W_G]`. A
row block is a restriction of the stack, so every block obeys
:math:`\|W_k\|_2 \le \sigma(W_{hh})` (and :math:`\sigma(W_{hh}) \le \sqrt{G}
\max_k \|W_k\|_2`). More useful: any sum of gate blocks weighted row by row by
diagonal matrices, :math:`\sum_k D_k W_k = [D_1, \dots, D_G]\,W_{hh}`, has norm
at most :math:`\max_j \big(\sum_k d_{k,j}^2\big)^{1/2}\,\sigma(W_{hh})`, since
:math:`[D_1, \dots, D_G]` has orthogonal rows. The one-step Jacobians are sums
of exactly that form, which gives the bounds below (derived in
:func:`lipschitz_bound`):

* **RNN**: :math:`\|J_t\| \le \sigma(W_{hh})`, because
  :math:`J_t = \mathrm{diag}(\phi'(a_t))\,W_{hh}` and :math:`|\tanh'|,
  |\mathrm{ReLU}'| \le 1`.
* **GRU**: :math:`\|J_t\| \le 1 + \kappa\,\sigma(W_{hh})`, the 1 from the
  leaky path :math:`z_t \odot h_{t-1}`, :math:`\kappa` a constant of the gate
  derivatives and of :math:`\|h\|_\infty` (and of :math:`W_{hn}` for the reset
  gate's product). A cap makes the GRU at most mildly expansive; it can never
  push the bound below 1, which the update gate can always reach.
* **LSTM**, state :math:`(h, c)`: :math:`\|J_t\| \le \max(\sigma(W_{hr}), 1)\,
  \kappa\,\max(\sigma(W_{hh}), 1)`; the ``max(., 1)`` is the cell path
  :math:`c_{t-1} \to c_t` through the forget gate, which no weight cap touches,
  and :math:`\kappa` grows with :math:`\|c_{t-1}\|_\infty` (through the forget
  gate's derivative :math:`c_{t-1} f(1-f)`).
"""

import math
import numbers
import weakref

import numpy as np

from .._validation import check_bool, check_int, describe
from ..nn.recurrent import RecurrentLayer
from ..nn.sequential import Sequential

__all__ = ["project_spectral", "SpectralBudget", "lipschitz_bound"]

#: Lanczos steps from a cold start, and per call once a vector is remembered.
_COLD_STEPS = 32
_WARM_STEPS = 6

#: model -> {parameter name: unit right-singular-vector estimate (float64)}.
#: Weak keys: the vectors go when the model does.
_POWER_STATE = weakref.WeakKeyDictionary()

#: Parameter names without their ``_l{k}[_reverse]`` suffix.
_SHORT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_ch")


# ----------------------------------------------------------------------- checks
def _check_max_sigma(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"max_sigma must be a positive finite real number, got {describe(value)}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"max_sigma must be a positive finite real number, got {value}")
    return float(value)


def _recurrent_names(model):
    """Names of the ``weight_hh*`` parameters of ``model``, in parameter order."""
    params = getattr(model, "params", None)
    if not isinstance(params, dict):
        raise TypeError("model must be a recurrent layer or Sequential with a params dict, "
                        f"got {describe(model)}")
    names = [name for name in params if "weight_hh" in name]
    if not names:
        raise ValueError("model must have recurrent matrices (parameters named weight_hh*), "
                         f"got parameters {sorted(params)}")
    return names


def _as_float64(name, matrix):
    """``matrix`` as a float64 copy; NaN or infinity is a ValueError naming the parameter."""
    array = np.array(matrix, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"model.params[{name!r}] holds NaN or infinity; its spectral norm "
                         "is undefined")
    return array


def _exact_sigma(matrix):
    """Largest singular value, by SVD (``numpy.linalg.norm(W, 2)``)."""
    return float(np.linalg.norm(matrix, 2)) if matrix.size else 0.0


def _frobenius(array):
    """Frobenius norm without ``numpy.linalg`` (``SpectralBudget.step`` promises no SVD)."""
    flat = array.reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


# ------------------------------------------------------------- sigma estimation
def _lanczos_sigma(matrix, start, steps):
    r"""Estimate :math:`\sigma_{max}` of ``matrix`` by Lanczos on :math:`W^\top W` from ``start``.

    Returns ``(sigma, v)``: the largest Ritz value's square root, a lower bound
    on :math:`\sigma_{max}`, and the unit Ritz vector (the right singular vector
    estimate to start the next call from).
    """
    n = matrix.shape[1]
    steps = max(1, min(steps, n))
    basis = np.zeros((steps, n))
    alpha, beta = np.zeros(steps), np.zeros(steps)
    v = start / np.linalg.norm(start)
    used = 0
    for j in range(steps):
        basis[j] = v
        used = j + 1
        w = matrix.T @ (matrix @ v)
        alpha[j] = v @ w
        for _ in range(2):  # full reorthogonalization, twice is enough
            w -= basis[:used].T @ (basis[:used] @ w)
        norm = math.sqrt(float(w @ w))
        if used == steps or norm <= 1e-13 * np.abs(alpha[:used]).max():
            break
        beta[j] = norm
        v = w / norm
    tri = np.diag(alpha[:used]) + np.diag(beta[:used - 1], 1) + np.diag(beta[:used - 1], -1)
    theta, vectors = np.linalg.eigh(tri)
    ritz = basis[:used].T @ vectors[:, -1]
    return math.sqrt(max(float(theta[-1]), 0.0)), ritz / np.linalg.norm(ritz)


def _estimate_sigma(memory, name, matrix):
    """Warm-started Lanczos estimate, remembering the vector in ``memory`` (a dict or None)."""
    n = matrix.shape[1]
    start = None if memory is None else memory.get(name)
    if start is None or start.shape != (n,):
        start = np.random.default_rng(n).standard_normal(n)
        steps = _COLD_STEPS
    else:
        steps = _WARM_STEPS
    sigma, vector = _lanczos_sigma(matrix, start, steps)
    if memory is not None:
        memory[name] = vector
    return sigma


def _memory_for(model):
    try:
        return _POWER_STATE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no memory, every call starts cold
        return None


def project_spectral(model, max_sigma, exact=False):
    r"""Cap the spectral norm of every recurrent matrix at ``max_sigma``, in place.

    For every parameter whose name contains ``weight_hh`` (``"1.weight_hh_l0"``
    in a :class:`~fastrnn.Sequential`), with :math:`\sigma = \|W\|_2` its
    largest singular value,

    .. math::

        W \leftarrow W \cdot \frac{\text{max\_sigma}}{\sigma}
        \quad\text{if}\quad \sigma > \text{max\_sigma},

    which sets the largest singular value to ``max_sigma`` (up to the rounding
    of the parameter dtype) and keeps the singular vectors. Matrices within the
    bound are not touched (bit for bit), nor is any other parameter.

    What the cap bounds, for every step and input (see the module docstring and
    :func:`lipschitz_bound` for the derivations): for a tanh or ReLU RNN the
    one-step Jacobian :math:`\|\partial h_t/\partial h_{t-1}\|_2 \le
    \text{max\_sigma}`. For the GRU and LSTM, whose ``weight_hh`` stacks the
    gate blocks, every gate block has norm at most ``max_sigma``, and so does
    any row-wise combination :math:`[D_1, \dots, D_G] W_{hh}` with
    :math:`\max_j \sum_k d_{kj}^2 \le 1`. The one-step Jacobians then obey
    :math:`\|J\| \le 1 + \kappa_{GRU}\,\text{max\_sigma}` and
    :math:`\|J\| \le \kappa_{LSTM} \max(\text{max\_sigma}, 1)` (times
    :math:`\max(\|W_{hr}\|, 1)` with a projection), with :math:`\kappa`
    depending on the state's size; the LSTM's cell path through the forget gate
    is not controlled by any weight cap.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Sequential
        Anything with a ``params`` dict of in-place views holding at least one
        ``weight_hh*`` matrix.
    max_sigma : float > 0
    exact : bool, default False
        True: :math:`\sigma` from an SVD (``numpy.linalg.norm(W, 2)``), so the
        cap holds exactly. False: :math:`\sigma` estimated by Lanczos iteration
        on :math:`W^\top W` (a Krylov acceleration of power iteration; plain
        power iteration left 3% errors on unlucky random matrices after 100
        iterations): 32 steps the first time a matrix is seen, then 6 steps
        warm-started from the remembered right singular vector. The vectors are
        kept per model in a ``weakref.WeakKeyDictionary`` (dropped with the
        model; a model that cannot be weakly referenced starts cold each call).
        Training moves ``W`` slowly, so the warm start stays near the top
        singular vector; the tests find the estimate within 2% of the SVD's.
        A Ritz value never exceeds :math:`\sigma`: the estimate is a *lower*
        bound, so after an inexact projection the true :math:`\sigma` may exceed
        ``max_sigma`` by the estimate's error.

    Returns
    -------
    dict of str to float
        For every recurrent matrix, :math:`\sigma` before projection (the
        estimate when ``exact`` is False).

    Raises
    ------
    TypeError
        ``model`` without a ``params`` dict, ``max_sigma`` not a real number,
        ``exact`` not a bool.
    ValueError
        No ``weight_hh*`` parameter; ``max_sigma`` not positive and finite; a
        recurrent matrix with NaN or infinity.

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> lstm = fr.LSTM(3, 8, dtype=np.float64, seed=0)
    >>> lstm.params["weight_hh_l0"] *= 10
    >>> before = project_spectral(lstm, 1.0, exact=True)
    >>> round(before["weight_hh_l0"], 2) > 1.0
    True
    >>> float(np.linalg.norm(lstm.params["weight_hh_l0"], 2).round(12))
    1.0
    """
    names = _recurrent_names(model)
    max_sigma = _check_max_sigma(max_sigma)
    exact = check_bool("exact", exact)
    memory = None if exact else _memory_for(model)
    before = {}
    for name in names:
        weight = model.params[name]
        matrix = _as_float64(name, weight)
        sigma = _exact_sigma(matrix) if exact else _estimate_sigma(memory, name, matrix)
        before[name] = sigma
        if sigma > max_sigma:
            weight[...] = matrix * (max_sigma / sigma)
    return before


# ------------------------------------------------------------------ the budget
class SpectralBudget:
    r"""Keep :math:`\sigma(W_{hh}) \le` ``max_sigma`` through training with no SVD per step.

    Weyl's inequality bounds how far an update can move the largest singular
    value:

    .. math::

        \sigma(W + \Delta W) \le \sigma(W) + \|\Delta W\|_2 \le \sigma(W) + \|\Delta W\|_F .

    The budget tracks an upper bound :math:`u \ge \sigma(W)` for every recurrent
    matrix. :meth:`step` lets the optimizer update the parameters, then, for
    each matrix, takes its update :math:`\Delta W = W_{new} - W_{old}` and keeps

    .. math::

        W \leftarrow W_{old} + s\,\Delta W, \qquad
        s = \min\Big(1, \frac{\text{max\_sigma} - u}{\|\Delta W\|_F}\Big),
        \qquad u \leftarrow u + s\,\|\Delta W\|_F \le \text{max\_sigma}.

    Matrices with room to spare keep the optimizer's update bit for bit
    (:math:`s = 1`); a matrix whose bound has reached ``max_sigma`` is frozen
    (:math:`s = 0`) until a refresh. The bound only grows between refreshes, so
    it grows loose; ``refresh_every`` re-measures the exact :math:`\sigma` by
    SVD to give the slack back.

    When an update is scaled, the written matrix is rounded to the parameter
    dtype; the scale is reduced by the largest possible rounding
    (:math:`\varepsilon (\|W_{old}\|_F + \|\Delta W\|_F)`), the update actually
    written is measured and added to the bound, and should rounding still push
    the bound past ``max_sigma`` the matrix keeps its old value (:math:`s = 0`).
    So :math:`\sigma(W) \le u \le \text{max\_sigma}` holds for the stored
    matrices, up to float64 rounding in the norms.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Sequential
        Anything with a ``params`` dict of in-place views holding at least one
        ``weight_hh*`` matrix.
    max_sigma : float > 0
    refresh_every : int >= 1 or None
        Re-measure the exact :math:`\sigma` (SVD) of every matrix every that
        many steps; None never does (no SVD at all in :meth:`step`).

    Attributes
    ----------
    bounds : dict of str to float
        The tracked upper bounds :math:`u`, by parameter name (a copy).
    initial_sigmas : dict of str to float
        Exact :math:`\sigma` of each matrix at construction. A matrix that
        starts above ``max_sigma`` is projected onto it first (as by
        :func:`project_spectral` with ``exact=True``, shrunk a few ulps further
        if rounding left it above), so the starting bounds are exact and within
        the cap.
    last_scales : dict of str to float
        The factor :math:`s` each matrix's update got in the last :meth:`step`.
    steps : int
        Number of :meth:`step` calls so far.

    Notes
    -----
    Parameters changed outside :meth:`step` (loading a checkpoint, a manual
    edit) invalidate the bounds: call :meth:`refresh` after.

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> rnn = fr.RNN(2, 4, dtype=np.float64, seed=0)
    >>> budget = SpectralBudget(rnn, max_sigma=0.9)
    >>> class Sgd:
    ...     def step(self):
    ...         rnn.flat_params[...] -= 0.1 * rnn.flat_grads
    >>> rnn.grads["weight_hh_l0"][...] = -np.eye(4)        # pushes sigma up by 0.1
    >>> scales = budget.step(Sgd())
    >>> bool(np.linalg.norm(rnn.params["weight_hh_l0"], 2) <= 0.9)
    True
    """

    def __init__(self, model, max_sigma, refresh_every=None):
        self._names = _recurrent_names(model)
        self.model = model
        self.max_sigma = _check_max_sigma(max_sigma)
        if refresh_every is not None:
            refresh_every = check_int("refresh_every", refresh_every, 1)
        self.refresh_every = refresh_every
        self.initial_sigmas = project_spectral(model, self.max_sigma, exact=True)
        for name in self._names:  # rounding may leave a projected matrix a few ulps high
            weight = model.params[name]
            for _ in range(4):
                matrix = _as_float64(name, weight)
                sigma = _exact_sigma(matrix)
                if sigma <= self.max_sigma:
                    break
                shrink = 1.0 - 4.0 * float(np.finfo(weight.dtype).eps)
                weight[...] = matrix * (self.max_sigma / sigma * shrink)
        self._bounds = {}
        self.refresh()
        self.steps = 0
        self.last_scales = {name: 1.0 for name in self._names}

    @property
    def bounds(self):
        """dict of str to float: the tracked upper bounds on each matrix's sigma."""
        return dict(self._bounds)

    def refresh(self):
        """Set every bound to the exact sigma of its matrix now (one SVD each)."""
        for name in self._names:
            self._bounds[name] = _exact_sigma(_as_float64(name, self.model.params[name]))

    def step(self, optimizer):
        """Run ``optimizer.step()``, then scale each recurrent update to fit the budget.

        Parameters
        ----------
        optimizer : object with a ``step()`` method
            Updates the model's parameters in place.

        Returns
        -------
        dict of str to float
            The scale :math:`s \\in [0, 1]` applied to each matrix's update.

        Raises
        ------
        TypeError
            ``optimizer`` has no callable ``step``.
        FloatingPointError
            The optimizer wrote NaN or infinity into a recurrent matrix; every
            recurrent matrix is restored to its value before the step.
        """
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError("optimizer must have a step() method that updates the model's "
                            f"parameters in place, got {describe(optimizer)}")
        params = self.model.params
        old = {name: params[name].copy() for name in self._names}
        optimizer.step()
        updates = {}
        for name in self._names:
            old64 = old[name].astype(np.float64)
            delta = params[name].astype(np.float64) - old64
            updates[name] = (old64, delta, _frobenius(delta))
        bad = [name for name, (_, _, norm) in updates.items() if not math.isfinite(norm)]
        if bad:
            for name in self._names:
                params[name][...] = old[name]
            raise FloatingPointError(f"optimizer.step() wrote NaN or infinity into {bad}; "
                                     "the recurrent matrices were restored")
        scales = {}
        for name, (old64, delta, norm) in updates.items():
            room = self.max_sigma - self._bounds[name]
            if norm <= room:
                scale, applied = 1.0, norm
            else:
                weight = params[name]
                rounding = float(np.finfo(weight.dtype).eps) * (_frobenius(old64) + norm)
                scale = max(room - rounding, 0.0) / norm
                weight[...] = old64 + scale * delta
                applied = _frobenius(weight.astype(np.float64) - old64)
                if self._bounds[name] + applied > self.max_sigma:
                    weight[...] = old[name]
                    scale, applied = 0.0, 0.0
            self._bounds[name] += applied
            scales[name] = scale
        self.steps += 1
        if self.refresh_every is not None and self.steps % self.refresh_every == 0:
            self.refresh()
        self.last_scales = scales
        return dict(scales)

    def __repr__(self):
        return (f"SpectralBudget(max_sigma={self.max_sigma}, refresh_every={self.refresh_every}, "
                f"steps={self.steps}, matrices={len(self._names)})")


# ------------------------------------------------------ Jacobians and bounds
def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _blocks(matrix, count):
    return np.split(matrix, count, axis=0)


def _rnn_step(spec, w, x, state):
    """One RNN step for a batch; returns ``(new_state, J)``, J of shape (B, H, H)."""
    (h,) = state
    a = x @ w["weight_ih"].T + w["bias_ih"] + h @ w["weight_hh"].T + w["bias_hh"]
    if spec.nonlinearity == "relu":
        h_new = np.maximum(a, 0.0)
        slope = (a > 0.0).astype(np.float64)
    else:
        h_new = np.tanh(a)
        slope = 1.0 - h_new * h_new
    return (h_new,), slope[:, :, None] * w["weight_hh"][None]


def _gru_step(spec, w, x, state):
    """One GRU step for a batch; returns ``(new_state, J)``, J of shape (B, H, H)."""
    (h,) = state
    x_r, x_z, x_n = np.split(x @ w["weight_ih"].T + w["bias_ih"], 3, axis=-1)
    w_r, w_z, w_n = _blocks(w["weight_hh"], 3)
    b_r, b_z, b_n = np.split(w["bias_hh"], 3)
    r = _sigmoid(x_r + h @ w_r.T + b_r)
    z = _sigmoid(x_z + h @ w_z.T + b_z)
    if spec.reset_after:
        q = h @ w_n.T + b_n
        n = np.tanh(x_n + r * q)
    else:
        n = np.tanh(x_n + (r * h) @ w_n.T + b_n)
    h_new = (1.0 - z) * n + z * h
    gate = (1.0 - z) * (1.0 - n * n)  # d h_new / d (candidate pre-activation)
    jac = ((h - n) * z * (1.0 - z))[:, :, None] * w_z[None]
    if spec.reset_after:
        jac += (gate * r)[:, :, None] * w_n[None]
        jac += (gate * q * r * (1.0 - r))[:, :, None] * w_r[None]
    else:
        inner = r[:, None, :] * np.eye(h.shape[1])[None] \
            + (h * r * (1.0 - r))[:, :, None] * w_r[None]     # d(r*h)/dh
        jac += gate[:, :, None] * np.einsum("ij,bjk->bik", w_n, inner)
    jac[:, np.arange(h.shape[1]), np.arange(h.shape[1])] += z
    return (h_new,), jac


def _lstm_step(spec, w, x, state):
    """One LSTM step for a batch; returns ``((h, c), J)``.

    ``J`` is the Jacobian of the state ``(h_t, c_t)`` with respect to
    ``(h_{t-1}, c_{t-1})``, shape (B, P + H, P + H), ``h`` first.
    """
    h, c = state
    hidden = c.shape[1]
    names = ("f", "g", "o") if spec.coupled else ("i", "f", "g", "o")
    pre = dict(zip(names, np.split(x @ w["weight_ih"].T + w["bias_ih"]
                                   + h @ w["weight_hh"].T + w["bias_hh"], len(names), axis=-1)))
    blocks = dict(zip(names, _blocks(w["weight_hh"], len(names))))
    zero = np.zeros(hidden)
    peep = {"i": zero, "f": zero, "o": zero}
    if spec.peephole:
        peep.update(zip(("f", "o") if spec.coupled else ("i", "f", "o"), w["weight_ch"]))
    f = _sigmoid(pre["f"] + peep["f"] * c)
    i = 1.0 - f if spec.coupled else _sigmoid(pre["i"] + peep["i"] * c)
    g = np.tanh(pre["g"])
    c_new = f * c + i * g
    o = _sigmoid(pre["o"] + peep["o"] * c_new)
    t = np.tanh(c_new)
    m = o * t
    # dc_new / d(pre-activations) and / dc (direct and through the peepholes)
    alpha = np.zeros_like(c) if spec.coupled else g * i * (1.0 - i)
    beta = ((c - g) if spec.coupled else c) * f * (1.0 - f)
    gamma = i * (1.0 - g * g)
    phi = f + beta * peep["f"] + alpha * peep["i"]
    # dm / da_o and total dm / dc_new (through o's peephole too)
    delta = t * o * (1.0 - o)
    omega = o * (1.0 - t * t) + delta * peep["o"]
    dc_dh = beta[:, :, None] * blocks["f"][None] + gamma[:, :, None] * blocks["g"][None]
    if not spec.coupled:
        dc_dh += alpha[:, :, None] * blocks["i"][None]
    dm_dh = omega[:, :, None] * dc_dh + delta[:, :, None] * blocks["o"][None]
    dm_dc = (omega * phi)[:, :, None] * np.eye(hidden)[None]
    dc_dc = phi[:, :, None] * np.eye(hidden)[None]
    if spec.proj_size:
        w_hr = w["weight_hr"]
        h_new = m @ w_hr.T
        dm_dh = np.einsum("pj,bjk->bpk", w_hr, dm_dh)
        dm_dc = np.einsum("pj,bjk->bpk", w_hr, dm_dc)
    else:
        h_new = m
    jac = np.concatenate([np.concatenate([dm_dh, dm_dc], axis=2),
                          np.concatenate([dc_dh, dc_dc], axis=2)], axis=1)
    return (h_new, c_new), jac


_STEPS = {"rnn": _rnn_step, "gru": _gru_step, "lstm": _lstm_step}


def _weights_bound(spec, w, h_max, c_max, horizon):
    """The weight-only bound of :func:`lipschitz_bound` and what it assumed about the state."""
    sigma = _exact_sigma(w["weight_hh"])
    if spec.kind == "rnn":
        return sigma, {}
    if spec.kind == "gru":
        m = max(1.0, h_max)
        if spec.reset_after:
            w_n = _blocks(w["weight_hh"], 3)[2]
            b_n = np.split(w["bias_hh"], 3)[2]
            q = float(np.max(np.abs(w_n).sum(axis=1) * m + np.abs(b_n)))
            bound = 1.0 + sigma * math.sqrt(1.0 + (q * q + (1.0 + m) ** 2) / 16.0)
        else:
            bound = 1.0 + sigma * (1.0 + m * sigma / 4.0) + sigma * (1.0 + m) / 4.0
        return bound, {"state_bound": m}
    if spec.coupled:
        cell = c_max if horizon == 1 else max(c_max, 1.0)
        b = (cell + 1.0) / 4.0
    else:
        cell = c_max + horizon - 1
        b = cell / 4.0
    p_i = p_f = p_o = 0.0
    if spec.peephole:
        rows = dict(zip(("f", "o") if spec.coupled else ("i", "f", "o"),
                        np.abs(w["weight_ch"]).max(axis=1)))
        p_i, p_f, p_o = (float(rows.get(k, 0.0)) for k in ("i", "f", "o"))
    phi = 1.0 + b * p_f + p_i / 4.0
    omega = 1.0 + p_o / 4.0
    kappa = math.sqrt(1.0 + omega * omega) * math.sqrt(1.0 + b * b + phi * phi) + 0.25
    projection = max(_exact_sigma(w["weight_hr"]), 1.0) if spec.proj_size else 1.0
    return projection * kappa * max(sigma, 1.0), {"cell_bound": float(cell)}


def _model_layers(model, hx):
    """``(name prefix, layer, its hx)`` for every recurrent layer of ``model``."""
    if isinstance(model, RecurrentLayer):
        return [("", model, hx)]
    if isinstance(model, Sequential):
        recurrent = [(f"{index}.", layer) for index, layer in enumerate(model.layers)
                     if isinstance(layer, RecurrentLayer)]
        if not recurrent:
            raise ValueError("model must contain a recurrent layer (RNN, LSTM or GRU), got a "
                             "Sequential without one")
        states = model._check_states("hx", hx)
        return [(prefix, layer, state) for (prefix, layer), state in zip(recurrent, states)]
    raise TypeError(f"model must be an RNN, LSTM, GRU or Sequential, got {describe(model)}")


def _initial_state(layer, hx, batch, unbatched):
    """``hx`` as batched float64 arrays (L*D, B, F), or None; shapes checked by the layer."""
    if hx is None:
        return None
    if batch is None:  # no x: take the batch from hx itself
        probe = hx[0] if isinstance(hx, (tuple, list)) and hx else hx
        ndim = np.ndim(probe)
        unbatched = ndim == 2
        batch = probe.shape[1] if ndim == 3 else 1
    return [s.astype(np.float64) for s in layer._check_state("hx", hx, batch, unbatched)]


def _analyse_layer(prefix, layer, x, hx, steps):
    """Bounds (and, with ``x``, empirical norms) for every layer/direction of ``layer``."""
    spec = layer.spec
    if x is not None:
        x, unbatched = layer._check_input(x)
        seq_len, batch = x.shape[:2]
        states = _initial_state(layer, hx, batch, unbatched)
        layer_input = x.astype(np.float64)
    else:
        states = _initial_state(layer, hx, None, False)
        seq_len, batch, unbatched = 1, None, False
    horizon = steps if steps is not None else seq_len
    out = spec.output_size
    results = {}
    for index in range(layer.num_layers):
        outputs = []
        for direction in range(layer.num_directions):
            row = index * layer.num_directions + direction
            suffix = f"_l{index}" + ("_reverse" if direction else "")
            w = {short: layer.params[short + suffix].astype(np.float64)
                 for short in _SHORT_NAMES if short + suffix in layer.params}
            gates = w["weight_hh"].shape[0]
            w.setdefault("bias_ih", np.zeros(gates))
            w.setdefault("bias_hh", np.zeros(gates))
            start = [s[row] for s in states] if states is not None else None
            h_max = float(np.abs(start[0]).max(initial=0.0)) if start else 0.0
            c_max = float(np.abs(start[1]).max(initial=0.0)) if start and len(start) > 1 else 0.0
            bound, assumed = _weights_bound(spec, w, h_max, c_max, horizon)
            entry = {"kind": spec.kind, "sigma": _exact_sigma(w["weight_hh"]),
                     "bound": bound, "steps": horizon, "empirical": None, **assumed}
            if x is not None:
                if start is None:
                    start = [np.zeros((batch, out))]
                    if spec.has_cell_state:
                        start.append(np.zeros((batch, spec.hidden_size)))
                y, norms = _trajectory(spec, w, layer_input[::-1] if direction else layer_input,
                                       tuple(start))
                if direction:
                    y, norms = y[::-1], norms[::-1]
                entry["empirical"] = norms
                outputs.append(y)
            results[prefix + "weight_hh" + suffix] = entry
        if x is not None:
            layer_input = np.concatenate(outputs, axis=2)
    if x is None:
        return results, None
    y = layer._to_user_layout(np.ascontiguousarray(layer_input.astype(layer.dtype)), unbatched)
    return results, y


def _trajectory(spec, w, x, state):
    """Run one direction over ``x`` (T, B, I) in float64; outputs and Jacobian norms (T, B)."""
    step = _STEPS[spec.kind]
    seq_len, batch, _ = x.shape
    norms = np.empty((seq_len, batch))
    outputs = np.empty((seq_len, batch, spec.output_size))
    for t in range(seq_len):
        state, jac = step(spec, w, x[t], state)
        norms[t] = np.linalg.svd(jac, compute_uv=False)[:, 0]
        outputs[t] = state[0]
    return outputs, norms


def lipschitz_bound(model, x=None, hx=None, *, steps=None):
    r"""Bound, and optionally measure, the one-step state Jacobians of every recurrent layer.

    The one-step Jacobian is :math:`J_t = \partial s_t / \partial s_{t-1}` with
    the state :math:`s = h` for the RNN and GRU and :math:`s = (h, c)` for the
    LSTM (rows and columns ``h`` first, then ``c``). Its spectral norm bounds how
    much a perturbation of the state, or a gradient flowing back, can grow in
    one step.

    **From the weights** (``"bound"``), valid at every step of every input:

    *RNN.* :math:`J_t = \mathrm{diag}(\phi'(a_t))\,W_{hh}` with
    :math:`0 \le \phi' \le 1` for tanh and ReLU, so

    .. math:: \|J_t\| \le \sigma(W_{hh}).

    *GRU, reset after (PyTorch).* With :math:`q = W_{hn} h_{t-1} + b_{hn}` and
    gates as in :class:`~fastrnn.GRU`,

    .. math::

        J_t = \mathrm{diag}(z) + [D_n, D_r, D_z]
              \begin{bmatrix} W_{hn} \\ W_{hr} \\ W_{hz} \end{bmatrix}, \quad
        D_n = \mathrm{diag}((1-z)(1-n^2)\,r),\
        D_r = \mathrm{diag}((1-z)(1-n^2)\,q\,r(1-r)),\
        D_z = \mathrm{diag}((h_{t-1}-n)\,z(1-z)).

    The stacked matrix is a row permutation of :math:`W_{hh}` and
    :math:`[D_n, D_r, D_z]` has orthogonal rows, so :math:`\|J_t\| \le \max_j
    z_j + \max_j (d_{n,j}^2 + d_{r,j}^2 + d_{z,j}^2)^{1/2}\,\sigma(W_{hh})`.
    Since :math:`h_t` is a convex combination of :math:`n \in (-1, 1)` and
    :math:`h_{t-1}`, :math:`\|h\|_\infty \le M = \max(1, \|h_0\|_\infty)` at
    every step, so :math:`|q_j| \le Q = \max_j (M \sum_k |W_{hn,jk}| +
    |b_{hn,j}|)`, and with :math:`r(1-r), z(1-z) \le 1/4`:

    .. math:: \|J_t\| \le 1 + \sigma(W_{hh}) \sqrt{1 + (Q^2 + (1+M)^2)/16}.

    *GRU, reset before (Cho et al.).* :math:`J_t = \mathrm{diag}(z) +
    \mathrm{diag}((1-z)(1-n^2))\,W_{hn}\,[\mathrm{diag}(r) +
    \mathrm{diag}(h_{t-1} r(1-r)) W_{hr}] + D_z W_{hz}`, and each block norm is
    at most :math:`\sigma = \sigma(W_{hh})`:

    .. math:: \|J_t\| \le 1 + \sigma (1 + M\sigma/4) + \sigma (1 + M)/4.

    *LSTM.* Per unit, the derivatives of :math:`c_t` with respect to the gate
    pre-activations are :math:`\alpha = g\,i(1-i)` (zero when coupled),
    :math:`\beta = (c_{t-1} - [\text{coupled}]\,g)\,f(1-f)`, :math:`\gamma =
    i(1-g^2)`, and with respect to :math:`c_{t-1}` directly :math:`\varphi = f +
    \beta p_f + \alpha p_i`; those of :math:`m_t = o_t \tanh c_t` are
    :math:`\delta = \tanh(c_t)\,o(1-o)` (to :math:`a_o`) and :math:`\omega =
    o(1-\tanh^2 c_t) + \delta p_o` (to :math:`c_t`, through the peephole too).
    Then

    .. math::

        \frac{\partial c_t}{\partial h_{t-1}} = [D_\alpha, D_\beta, D_\gamma, 0]\,W_{hh},
        \quad \frac{\partial c_t}{\partial c_{t-1}} = D_\varphi, \quad
        \frac{\partial m_t}{\partial s_{t-1}} = D_\omega \frac{\partial c_t}{\partial s_{t-1}}
            + [0, 0, 0, D_\delta]\,W_{hh} \text{ (on } h_{t-1}).

    So :math:`J_t = \mathrm{blockdiag}(W_{hr}, I)\,K\,\mathrm{blockdiag}(W_{hh},
    I)` where :math:`K` splits into one :math:`2 \times 5` block per unit,
    :math:`K_j = \binom{\omega_j}{1} u_j^\top + \binom{\delta_j}{0} e_o^\top`
    with :math:`u_j = (\alpha, \beta, \gamma, 0, \varphi)_j`; hence
    :math:`\|K\| \le \max_j \sqrt{1+\omega_j^2}\,\|u_j\| + |\delta_j|`. Using
    :math:`\alpha^2 + \gamma^2 \le i^2 \le 1`, :math:`|\beta| \le B`,
    :math:`|\delta| \le 1/4` and the largest peephole weights :math:`P_i, P_f,
    P_o`:

    .. math::

        \|J_t\| \le \max(\sigma(W_{hr}), 1)\,\Big(\sqrt{1+\Omega^2}\sqrt{1 + B^2 + \Phi^2}
            + \tfrac14\Big)\,\max(\sigma(W_{hh}), 1),
        \quad \Omega = 1 + \tfrac{P_o}{4},\ \Phi = 1 + B P_f + \tfrac{P_i}{4},

    with :math:`\sigma(W_{hr}) = 1` without projection, :math:`B = C/4`
    (:math:`(C+1)/4` when coupled) and :math:`C \ge \|c_{t-1}\|_\infty`. The
    cell state can grow: :math:`\|c_t\|_\infty < \|c_{t-1}\|_\infty + 1`, so over
    ``steps`` steps :math:`C = \|c_0\|_\infty + \text{steps} - 1`; coupled gates
    make :math:`c_t` a convex combination and :math:`C = \max(\|c_0\|_\infty, 1)`
    (:math:`\|c_0\|_\infty` for one step).
    No horizon-free bound exists for the uncoupled LSTM: the forget gate's
    term :math:`c_{t-1} f(1-f)` grows with :math:`|c_{t-1}|`.

    **Along a trajectory** (``"empirical"``, when ``x`` is given): the exact
    :math:`\|J_t\|_2` at every step and batch element, from the closed-form
    Jacobians above evaluated in float64 on the float64 trajectory that ``x``
    and ``hx`` produce. Layer ``k > 0`` (and every recurrent layer of a
    :class:`~fastrnn.Sequential`) is measured along its own input, the previous
    layer's output without dropout (inference). The reverse direction's entry
    ``t`` is its step that reads ``x_t`` (from the state at ``t + 1``).

    Parameters
    ----------
    model : RNN, LSTM, GRU or Sequential
    x : ndarray, optional
        Input in the model's layout and dtype, as for ``model(x)``.
    hx : optional
        Initial state, as for ``model(x, hx)`` (zeros when None). Enters the
        bounds through :math:`\|h_0\|_\infty` (GRU) and :math:`\|c_0\|_\infty`
        (LSTM).
    steps : int >= 1, optional
        Horizon the LSTM bound must cover; default ``len(x)``, or 1 without ``x``.

    Returns
    -------
    dict of str to dict
        Keyed by the recurrent matrix's parameter name (``"weight_hh_l0"``,
        ``"weight_hh_l1_reverse"``, ``"2.weight_hh_l0"`` in a Sequential), each
        with ``"kind"``, ``"sigma"`` (:math:`\sigma(W_{hh})`), ``"bound"``
        (float), ``"steps"`` (horizon), ``"empirical"`` (ndarray (T, B), time
        major whatever the layout, B = 1 unbatched; None without ``x``), and
        ``"state_bound"`` :math:`M` (GRU) or ``"cell_bound"`` :math:`C` (LSTM).

    Raises
    ------
    TypeError
        ``model`` not a recurrent layer or Sequential; ``x`` or ``hx`` of the
        wrong dtype; ``steps`` not an int.
    ValueError
        A Sequential without a recurrent layer; ``x`` or ``hx`` of the wrong
        shape; ``steps < 1``.

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> rnn = fr.RNN(3, 4, dtype=np.float64, seed=0)
    >>> info = lipschitz_bound(rnn, np.ones((5, 2, 3)))["weight_hh_l0"]
    >>> info["empirical"].shape, bool((info["empirical"] <= info["bound"]).all())
    ((5, 2), True)
    """
    if steps is not None:
        steps = check_int("steps", steps, 1)
    layers = _model_layers(model, hx)
    results = {}
    current = x
    layer_hx = {id(layer): state for _, layer, state in layers}
    prefixes = {id(layer): prefix for prefix, layer, _ in layers}
    sequence = model.layers if isinstance(model, Sequential) else [model]
    for layer in sequence:
        if isinstance(layer, RecurrentLayer):
            found, current = _analyse_layer(prefixes[id(layer)], layer, current,
                                            layer_hx[id(layer)], steps)
            results.update(found)
        elif current is not None:
            current = layer(current)
    return results
