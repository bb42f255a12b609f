r"""Long short-term memory cell, with optional peepholes and coupled gates.

PyTorch's gate order i, f, g, o. With :math:`a_\ast = W_{i\ast} x_t + b_{i\ast}
+ W_{h\ast} h_{t-1} + b_{h\ast}` the pre-activations,

.. math::

    i_t &= \sigma(a_i + p_i \odot c_{t-1}) \\
    f_t &= \sigma(a_f + p_f \odot c_{t-1}) \\
    g_t &= \tanh(a_g) \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
    o_t &= \sigma(a_o + p_o \odot c_t) \\
    m_t &= o_t \odot \tanh(c_t) \\
    h_t &= m_t \quad\text{or, with a projection,}\quad h_t = W_{hr} m_t

The peephole weights :math:`p_i, p_f, p_o` are zero unless ``peephole=True``
(Gers & Schmidhuber 2000). With ``coupled=True`` (CIFG) there is no input gate:
:math:`i_t = 1 - f_t`, the weights hold gates f, g, o, and the peephole row for
i does not exist.

Backward, for one element, given :math:`\bar m = \partial L/\partial m_t` and the
cell gradient :math:`\bar c_{t}^{\,next}` flowing back from step t+1:

.. math::

    \bar a_o &= \bar m \tanh(c_t)\, o_t (1 - o_t) \\
    \bar c_t &= \bar c_{t}^{\,next} + \bar m\, o_t (1 - \tanh^2 c_t) + \bar a_o p_o \\
    \bar a_g &= \bar c_t\, i_t (1 - g_t^2) \\
    \bar a_i &= \bar c_t\, g_t\, i_t (1 - i_t) \\
    \bar a_f &= (\bar c_t\, c_{t-1} - [\text{coupled}]\, \bar c_t g_t)\, f_t (1 - f_t) \\
    \bar c_{t-1} &= \bar c_t f_t + \bar a_i p_i + \bar a_f p_f
"""

from .activations import sigmoid, tanh


def lstm_forward_point(a_i, a_f, a_g, a_o, c_prev, p_i, p_f, p_o, coupled, one):
    """One element of one LSTM step.

    Returns ``(i, f, g, o, c, m)``: the gate activations, the new cell state and
    the gated output ``m = o * tanh(c)`` (before any projection). ``a_i`` and
    ``p_i`` are ignored when ``coupled``. ``one`` is 1 in the working dtype.
    """
    f = sigmoid(a_f + p_f * c_prev, one)
    if coupled:
        i = one - f
    else:
        i = sigmoid(a_i + p_i * c_prev, one)
    g = tanh(a_g, one)
    c = f * c_prev + i * g
    o = sigmoid(a_o + p_o * c, one)
    m = o * tanh(c, one)
    return i, f, g, o, c, m


def lstm_backward_point(dm, dc_next, i, f, g, o, c, c_prev, p_i, p_f, p_o, coupled, one):
    """Backward of :func:`lstm_forward_point` for one element.

    Returns ``(da_i, da_f, da_g, da_o, dc_prev)``: gradients with respect to the
    four pre-activations (``da_i`` is 0 when ``coupled``) and to ``c_prev``.
    """
    tanh_c = tanh(c, one)
    da_o = dm * tanh_c * o * (one - o)
    dc = dc_next + dm * o * (one - tanh_c * tanh_c) + da_o * p_o
    da_g = dc * i * (one - g * g)
    di = dc * g
    df = dc * c_prev
    if coupled:
        df = df - di
        da_i = (one - one) * di
    else:
        da_i = di * i * (one - i)
    da_f = df * f * (one - f)
    dc_prev = dc * f + da_i * p_i + da_f * p_f
    return da_i, da_f, da_g, da_o, dc_prev
