r"""Elman (vanilla) RNN cell.

.. math::

    h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),
    \qquad \phi \in \{\tanh, \mathrm{ReLU}\}

Backward, with :math:`a_t` the pre-activation:

.. math::

    \frac{\partial L}{\partial a_t} = \frac{\partial L}{\partial h_t}\,\phi'(a_t),
    \qquad \tanh'(a) = 1 - h^2, \qquad \mathrm{ReLU}'(a) = [h > 0]

Both derivatives are written in terms of the output :math:`h_t`, so the tape
keeps only the hidden states.
"""

from .activations import relu, tanh

#: Nonlinearity codes used by the kernels.
TANH = 0
RELU = 1


def rnn_forward_point(a, nonlinearity, one):
    """Apply the cell's nonlinearity to one pre-activation ``a``.

    ``one`` is 1 in the working dtype (see :mod:`fastrnn.cells.activations`).
    """
    if nonlinearity == RELU:
        return relu(a, one)
    return tanh(a, one)


def rnn_backward_point(dh, h, nonlinearity, one):
    """Gradient with respect to the pre-activation from ``dh`` and the output ``h``."""
    if nonlinearity == RELU:
        return dh if h > one - one else (one - one) * dh
    return dh * (one - h * h)
