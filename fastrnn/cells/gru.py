r"""Gated recurrent unit, in both reset forms.

PyTorch's gate order r, z, n:

.. math::

    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
    z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
    n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))
        \quad\text{(reset\_after=True, PyTorch, cuDNN)} \\
    n_t &= \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})
        \quad\text{(reset\_after=False, Cho et al. 2014, d2l)} \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

Call :math:`q_t` the recurrent term of the candidate: :math:`q_t = W_{hn} h_{t-1}
+ b_{hn}` (reset after) or :math:`q_t = W_{hn}(r_t \odot h_{t-1}) + b_{hn}`
(reset before). Backward, for one element, given :math:`\bar h = \partial
L/\partial h_t`:

.. math::

    \bar a_n &= \bar h (1 - z_t)(1 - n_t^2), \qquad
    \bar a_z = \bar h (h_{t-1} - n_t)\, z_t (1 - z_t) \\
    \bar q_t &= \bar a_n r_t \ \text{(after)} \quad\text{or}\quad \bar a_n \ \text{(before)} \\
    \bar a_r &= \bar a_n q_t\, r_t (1 - r_t) \ \text{(after)} \quad\text{or}\quad
        (W_{hn}^\top \bar a_n) \odot h_{t-1}\, r_t (1 - r_t) \ \text{(before)} \\
    \bar h_{t-1} &= \bar h z_t + W_{hr}^\top \bar a_r + W_{hz}^\top \bar a_z +
        (W_{hn}^\top \bar q_t \ \text{(after)} \ \text{or} \
         (W_{hn}^\top \bar a_n) \odot r_t \ \text{(before)})
"""

from .activations import sigmoid, tanh


def gru_gates_point(a_r, a_z, one):
    """Reset and update gates ``(r, z)`` from their pre-activations.

    ``one`` is 1 in the working dtype (see :mod:`fastrnn.cells.activations`).
    """
    return sigmoid(a_r, one), sigmoid(a_z, one)


def gru_output_point(a_n_input, q, r, z, h_prev, reset_after, one):
    """Candidate ``n`` and new state ``h`` for one element.

    ``a_n_input`` is ``W_in x + b_in``; ``q`` the recurrent term defined in the
    module docstring.
    """
    if reset_after:
        n = tanh(a_n_input + r * q, one)
    else:
        n = tanh(a_n_input + q, one)
    return n, (one - z) * n + z * h_prev


def gru_backward_point(dh, r, z, n, h_prev, q, reset_after, one):
    """Backward of one GRU element, up to what needs a matrix product.

    Returns ``(da_r, da_z, da_n, dq, dh_prev_direct)``. With ``reset_after``
    ``da_r`` is final; without it ``da_r`` is 0 here and is completed by the
    scan once ``W_hn^T da_n`` is known. ``dh_prev_direct`` is the part of
    ``dL/dh_{t-1}`` that bypasses the weights (``dh * z``).
    """
    da_n = dh * (one - z) * (one - n * n)
    da_z = dh * (h_prev - n) * z * (one - z)
    if reset_after:
        dq = da_n * r
        da_r = da_n * q * r * (one - r)
    else:
        dq = da_n
        da_r = (one - one) * da_n
    return da_r, da_z, da_n, dq, dh * z


def gru_reset_before_point(d_rh, r, h_prev, one):
    """Reset-before GRU: split ``d(r*h)`` into ``(da_r, dh_prev_part)``.

    ``d_rh`` is ``(W_hn^T da_n)`` for one element, the gradient with respect to
    ``r * h_{t-1}``.
    """
    return d_rh * h_prev * r * (one - r), d_rh * r
