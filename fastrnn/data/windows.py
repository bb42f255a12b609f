"""Supervised windows over a time series, time-major: :func:`sliding_windows`."""

import numpy as np

from .._validation import check_int, describe


def sliding_windows(series, window, horizon=1, stride=1):
    """Cut a series into (past ``window`` steps, next ``horizon`` steps) pairs.

    Window ``m`` starts at step ``s = m * stride``: its inputs are
    ``series[s:s + window]`` and its targets the ``horizon`` steps that follow,
    ``series[s + window:s + window + horizon]``. Only complete pairs are made:
    ``M = (N - window - horizon) // stride + 1``.

    Parameters
    ----------
    series : array_like of numbers, shape (N,) or (N, F)
        A 1-D series is taken as ``F = 1`` feature, so the outputs are always
        3-D, the recurrent layers' input layout.
    window : int
        Input steps per pair, ``>= 1``.
    horizon : int, default 1
        Target steps per pair, ``>= 1``; ``window + horizon <= N``.
    stride : int, default 1
        Steps between the starts of consecutive pairs.

    Returns
    -------
    inputs : ndarray, shape (window, M, F)
    targets : ndarray, shape (horizon, M, F)
        Time-major (column ``m`` is pair ``m``), the series' dtype, new memory.
        For one-step prediction take ``targets[0]``, shape (M, F).

    Examples
    --------
    >>> import numpy as np
    >>> inputs, targets = sliding_windows(np.arange(6.0), window=3, horizon=2)
    >>> inputs.shape, targets.shape
    ((3, 2, 1), (2, 2, 1))
    >>> inputs[:, :, 0]
    array([[0., 1.],
           [1., 2.],
           [2., 3.]])
    >>> targets[:, :, 0]
    array([[3., 4.],
           [4., 5.]])
    """
    array = np.asarray(series)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"series must be an array of integers or floats, got {describe(series)}")
    if array.ndim not in (1, 2):
        raise ValueError(f"series must have shape (N,) or (N, F), got {array.shape}")
    if array.ndim == 1:
        array = array[:, None]
    window = check_int("window", window, 1)
    horizon = check_int("horizon", horizon, 1)
    stride = check_int("stride", stride, 1)
    length = array.shape[0]
    if window + horizon > length:
        raise ValueError(f"window + horizon must be <= the series length {length}, got "
                         f"window={window} and horizon={horizon}")
    starts = np.arange(0, length - window - horizon + 1, stride)
    inputs = array[starts[None, :] + np.arange(window)[:, None]]
    targets = array[starts[None, :] + window + np.arange(horizon)[:, None]]
    return inputs, targets
