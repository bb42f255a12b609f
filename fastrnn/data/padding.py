"""Sequences of different lengths into one array plus lengths: :func:`pad_sequences`."""

import numbers

import numpy as np

from .._validation import check_bool, describe


def pad_sequences(sequences, dtype=None, value=0.0, time_major=True):
    """Stack sequences of different lengths, padding each at its end.

    The ``lengths`` returned go straight to the layers' ``lengths=`` argument,
    which stops each sequence's recurrence at its own length.

    Parameters
    ----------
    sequences : sequence of array_like
        ``B >= 1`` arrays, all of shape (T_i,) (e.g. token ids) or all of
        shape (T_i, F) with the same F; ``T_i`` may be 0.
    dtype : data-type, optional
        Of the result; default the sequences' common dtype
        (:func:`numpy.result_type`). Pass the layer's dtype for float inputs:
        layers don't convert.
    value : scalar, default 0.0
        Written in the padding; must be representable in ``dtype``.
    time_major : bool, default True
        Time first, ``(T_max, B, ...)``, the layers' default layout; ``False``
        gives ``(B, T_max, ...)`` for ``batch_first=True`` layers.

    Returns
    -------
    padded : ndarray, shape (T_max, B) or (T_max, B, F)
        (``(B, T_max)`` or ``(B, T_max, F)`` when ``time_major`` is False),
        ``T_max = max(T_i)``.
    lengths : ndarray of int64, shape (B,)
        ``T_i``.

    Examples
    --------
    >>> padded, lengths = pad_sequences([[5, 6, 7], [8]])
    >>> padded
    array([[5, 8],
           [6, 0],
           [7, 0]])
    >>> lengths
    array([3, 1])
    >>> import numpy as np
    >>> x, lengths = pad_sequences([np.ones((2, 4), np.float32), np.ones((5, 4), np.float32)])
    >>> x.shape, x.dtype
    ((5, 2, 4), dtype('float32'))
    """
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, (list, tuple)):
        raise TypeError(f"sequences must be a list or tuple of arrays, got {describe(sequences)}")
    if not sequences:
        raise ValueError("sequences must hold at least one sequence, got an empty "
                         f"{type(sequences).__name__}")
    time_major = check_bool("time_major", time_major)
    arrays = [_check_sequence(i, s) for i, s in enumerate(sequences)]
    ndim = arrays[0].ndim
    for i, array in enumerate(arrays):
        if array.ndim != ndim or array.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(f"sequences must all have shape (T_i,) or all (T_i, F) with the same "
                             f"F; sequences[0] has shape {arrays[0].shape} and sequences[{i}] "
                             f"{array.shape}")
    if dtype is None:
        dtype = np.result_type(*arrays)
    else:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be a numpy integer or floating dtype, "
                            f"got {dtype!r}") from None
    fill = _check_value(value, dtype)
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    padded = np.full((int(lengths.max()), len(arrays)) + arrays[0].shape[1:], fill, dtype=dtype)
    for b, array in enumerate(arrays):
        padded[:len(array), b] = array
    if not time_major:
        padded = np.ascontiguousarray(np.swapaxes(padded, 0, 1))
    return padded, lengths


def _check_sequence(i, sequence):
    array = np.asarray(sequence)
    if isinstance(sequence, (list, tuple)) and len(sequence) == 0:
        array = array.astype(np.int64)  # an empty list carries no dtype; don't make it float
    if array.dtype.kind not in "iuf":
        raise TypeError(f"sequences[{i}] must be an array of integers or floats, "
                        f"got {describe(sequence)}")
    if array.ndim not in (1, 2):
        raise ValueError(f"sequences[{i}] must have shape (T,) or (T, F), got {array.shape}")
    return array


def _check_value(value, dtype):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"value must be a real number, got {describe(value)}")
    if dtype.kind not in "iuf":
        raise TypeError(f"dtype must be an integer or floating dtype, got {dtype}")
    fill = np.array(value).astype(dtype)
    if fill != value and not (np.isnan(value) and dtype.kind == "f"):
        raise ValueError(f"value {value!r} is not representable in dtype {dtype}")
    return fill
