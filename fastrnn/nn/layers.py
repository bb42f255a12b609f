"""The user-facing sequence layers: :class:`RNN`, :class:`LSTM`, :class:`GRU`."""

import numpy as np

from .._validation import check_bool, check_choice, check_int
from .recurrent import RecurrentLayer

_COMMON_PARAMETERS = """
    input_size : int
        Features of the input ``x``.
    hidden_size : int
        Size ``H`` of the hidden state.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads layer ``k - 1``'s output.
    bias : bool, default True
        Use ``bias_ih`` and ``bias_hh``.
    batch_first : bool, default False
        Input and output are (B, T, F) rather than (T, B, F); states are not affected.
    dropout : float in [0, 1), default 0
        Dropout on the outputs of every layer but the last, in :meth:`forward`
        only (training); :meth:`backward` reuses the same mask.
    bidirectional : bool, default False
        Run a second, reversed direction; outputs are concatenated on the
        feature axis and states interleaved as ``layer * 2 + direction``.
    dtype : numpy.float32 or numpy.float64, default numpy.float32
        Parameter dtype (None also means float32). Inputs, states and gradients
        must have it too: arrays of another dtype raise ``TypeError`` instead of
        being cast.
    device : {"auto", "cpu", "cuda"}, default "auto"
        "cuda" runs the CUDA backend (NumPy in and out); "auto" is "cpu" for
        now (see :data:`fastrnn.device.AUTO_PICKS_CUDA`).
    seed : int or None
        Seeds the initialisation U(-1/sqrt(H), 1/sqrt(H)) and the dropout masks.
"""


class RNN(RecurrentLayer):
    __doc__ = r"""Elman RNN over whole sequences, layer for layer like ``torch.nn.RNN``.

    .. math::

        h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),
        \qquad \phi = \tanh \text{ or } \mathrm{ReLU}

    Parameters
    ----------""" + _COMMON_PARAMETERS + """    nonlinearity : {"tanh", "relu"}, default "tanh"

    Attributes
    ----------
    params, grads : dict of str to ndarray
        ``weight_ih_l{k}[_reverse]`` (H, in), ``weight_hh_l{k}`` (H, H),
        ``bias_ih_l{k}`` (H,), ``bias_hh_l{k}`` (H,).

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> rnn = fr.RNN(3, 5, seed=0)
    >>> y, h_n = rnn(np.ones((7, 2, 3), np.float32))
    >>> y.shape, h_n.shape
    ((7, 2, 5), (1, 2, 5))
    """

    _kind = "rnn"

    def __init__(self, input_size, hidden_size, num_layers=1, *, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float32,
                 device="auto", seed=None):
        check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, dtype=dtype, device=device,
                         seed=seed, nonlinearity=nonlinearity)


class LSTM(RecurrentLayer):
    __doc__ = r"""Long short-term memory over whole sequences, like ``torch.nn.LSTM``.

    Gate order i, f, g, o:

    .. math::

        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} + p_i \odot c_{t-1}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} + p_f \odot c_{t-1}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} + p_o \odot c_t) \\
        h_t &= o_t \odot \tanh(c_t)
        \quad (h_t = W_{hr}(o_t \odot \tanh c_t) \text{ with a projection})

    The peephole terms :math:`p_\ast` exist only with ``peephole=True``; with
    ``coupled=True`` the input gate is :math:`i_t = 1 - f_t`.

    Parameters
    ----------""" + _COMMON_PARAMETERS + """    proj_size : int, default 0
        If > 0, ``h_t`` is projected to this size by ``weight_hr_l{k}`` (P, H).
    peephole : bool, default False
        Add diagonal peephole weights ``weight_ch_l{k}`` of shape (3, H), rows
        i, f, o (i and f read :math:`c_{t-1}`, o reads :math:`c_t`); (2, H),
        rows f, o, when also ``coupled``. PyTorch has no such parameter.
    coupled : bool, default False
        CIFG: no input gate, :math:`i = 1 - f`; ``weight_ih``/``weight_hh``
        hold gates f, g, o (3H rows). PyTorch has no such variant.

    Attributes
    ----------
    params, grads : dict of str to ndarray
        ``weight_ih_l{k}[_reverse]`` (4H, in), ``weight_hh_l{k}`` (4H, P),
        ``bias_ih_l{k}`` (4H,), ``bias_hh_l{k}`` (4H,), ``weight_hr_l{k}`` (P, H)
        and ``weight_ch_l{k}`` as above.

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> lstm = fr.LSTM(3, 5, num_layers=2, seed=0)
    >>> y, (h_n, c_n) = lstm(np.ones((7, 2, 3), np.float32))
    >>> y.shape, h_n.shape, c_n.shape
    ((7, 2, 5), (2, 2, 5), (2, 2, 5))
    """

    _kind = "lstm"

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, peephole=False, coupled=False,
                 dtype=np.float32, device="auto", seed=None):
        proj_size = check_int("proj_size", proj_size, 0)
        hidden = check_int("hidden_size", hidden_size, 1)
        if proj_size >= hidden:
            raise ValueError(f"proj_size must be smaller than hidden_size={hidden}, "
                             f"got {proj_size}")
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, dtype=dtype, device=device,
                         seed=seed, proj_size=proj_size,
                         peephole=check_bool("peephole", peephole),
                         coupled=check_bool("coupled", coupled))


class GRU(RecurrentLayer):
    __doc__ = r"""Gated recurrent unit over whole sequences, like ``torch.nn.GRU``.

    Gate order r, z, n:

    .. math::

        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    With ``reset_after=False`` the candidate is Cho et al.'s (and d2l's)
    :math:`n_t = \tanh(W_{in} x_t + b_{in} + W_{hn}(r_t \odot h_{t-1}) + b_{hn})`.

    Parameters
    ----------""" + _COMMON_PARAMETERS + """    reset_after : bool, default True
        Apply the reset gate after the recurrent product (PyTorch, cuDNN) or
        before it (Cho et al. 2014, d2l).

    Attributes
    ----------
    params, grads : dict of str to ndarray
        ``weight_ih_l{k}[_reverse]`` (3H, in), ``weight_hh_l{k}`` (3H, H),
        ``bias_ih_l{k}`` (3H,), ``bias_hh_l{k}`` (3H,).

    Examples
    --------
    >>> import numpy as np, fastrnn as fr
    >>> gru = fr.GRU(3, 5, bidirectional=True, seed=0)
    >>> y, h_n = gru(np.ones((7, 2, 3), np.float32))
    >>> y.shape, h_n.shape
    ((7, 2, 10), (2, 2, 5))
    """

    _kind = "gru"

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, reset_after=True, dtype=np.float32,
                 device="auto", seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                         dropout=dropout, bidirectional=bidirectional, dtype=dtype, device=device,
                         seed=seed, reset_after=check_bool("reset_after", reset_after))
