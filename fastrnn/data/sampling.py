"""Language-model minibatches from a 1-D corpus of token ids, time-major.

d2l's two samplers (*Dive into Deep Learning*, "Language Models"),
``seq_data_iter_random`` and ``seq_data_iter_sequential``, with three changes:

* every batch is **time-major**: ``X`` and ``Y`` have shape
  ``(num_steps, batch_size)``, column ``b`` being one sequence, the layout the
  recurrent layers and :class:`fastrnn.Embedding` take;
* all randomness comes from an explicit :class:`numpy.random.Generator`, so an
  epoch is reproducible from the generator's state;
* an epoch is returned as a **list** of ``(X, Y)`` pairs, not a generator.

The list makes resuming exact. Record ``rng.bit_generator.state`` before
building an epoch; to resume that epoch after batch ``i``, restore the state,
build the epoch again and continue from ``batches[i + 1:]``. The generator ends
in the same state as in the interrupted run, so later epochs match too::

    state = rng.bit_generator.state          # saved with the checkpoint
    batches = random_batches(corpus, batch_size, num_steps, rng)
    ...                                      # interrupted after batch i
    rng.bit_generator.state = state          # on restart
    batches = random_batches(corpus, batch_size, num_steps, rng)
    for X, Y in batches[i + 1:]:
        ...

Both random samplers need a corpus of at least ``num_steps * (batch_size + 1)``
tokens, enough for one batch whatever the random offset, so an epoch is never
empty.
"""

import numpy as np

from .._validation import check_int, describe


def _check_corpus(corpus):
    """``corpus`` as a 1-D int64 array."""
    if isinstance(corpus, (list, tuple)) and len(corpus) == 0:
        return np.zeros(0, dtype=np.int64)
    array = np.asarray(corpus)
    if array.dtype.kind not in "iu":
        given = array if isinstance(corpus, (list, tuple)) else corpus
        raise TypeError(f"corpus must be a 1-D array of integer token ids, got {describe(given)}")
    if array.ndim != 1:
        raise ValueError(f"corpus must be a 1-D array of token ids, got shape {array.shape}")
    return array.astype(np.int64, copy=False)


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(0)),"
                        f" got {describe(rng)}")
    return rng


def _check_args(corpus, batch_size, num_steps, rng, caller):
    corpus = _check_corpus(corpus)
    batch_size = check_int("batch_size", batch_size, 1)
    num_steps = check_int("num_steps", num_steps, 1)
    _check_rng(rng)
    needed = num_steps * (batch_size + 1)
    if len(corpus) < needed:
        raise ValueError(
            f"corpus of length {len(corpus)} is too short for batch_size={batch_size} and "
            f"num_steps={num_steps}: {caller} needs at least num_steps * (batch_size + 1) = "
            f"{needed} tokens to give one batch whatever its random offset")
    return corpus, batch_size, num_steps


def _gather(corpus, starts, num_steps):
    """Windows of ``corpus`` at ``starts`` (shape (K, B)) as K pairs of (num_steps, B) arrays."""
    index = starts[:, None, :] + np.arange(num_steps)[None, :, None]
    inputs, targets = corpus[index], corpus[index + 1]
    return [(inputs[k], targets[k]) for k in range(len(starts))]


def random_batches(corpus, batch_size, num_steps, rng):
    """One epoch of randomly sampled, independent windows (d2l's ``seq_data_iter_random``).

    The corpus is cut, from a random offset in ``[0, num_steps - 1]``, into
    consecutive non-overlapping windows of ``num_steps`` tokens (each with the
    following token available as the last target). The windows are shuffled
    and grouped ``batch_size`` at a time; the windows left over after the last
    full batch are not used this epoch. Neighbouring columns or batches are
    not adjacent in the corpus, so reset the recurrent state before each batch.

    The generator is drawn from exactly twice: ``rng.integers(num_steps)`` for
    the offset, then ``rng.permutation(number of windows)``.

    Parameters
    ----------
    corpus : array_like of int, shape (N,)
        Token ids, ``N >= num_steps * (batch_size + 1)``.
    batch_size, num_steps : int
    rng : numpy.random.Generator

    Returns
    -------
    list of (X, Y)
        ``X`` and ``Y`` int64 arrays of shape (num_steps, batch_size); ``Y`` is
        ``X`` one token later: ``X[:, b] == corpus[s:s + num_steps]`` and
        ``Y[:, b] == corpus[s + 1:s + num_steps + 1]`` for some start ``s``
        with ``s % num_steps == offset``.

    Examples
    --------
    >>> import numpy as np
    >>> corpus = np.arange(35)
    >>> batches = random_batches(corpus, 2, 5, np.random.default_rng(0))
    >>> len(batches), batches[0][0].shape
    (3, (5, 2))
    >>> X, Y = batches[0]
    >>> bool((Y[:-1] == X[1:]).all() and (Y[-1] == X[-1] + 1).all())
    True
    """
    corpus, batch_size, num_steps = _check_args(corpus, batch_size, num_steps, rng,
                                                "random_batches")
    offset = int(rng.integers(num_steps))
    num_windows = (len(corpus) - offset - 1) // num_steps
    order = rng.permutation(num_windows)
    num_batches = num_windows // batch_size
    starts = offset + num_steps * order[:num_batches * batch_size].reshape(num_batches, batch_size)
    return _gather(corpus, starts, num_steps)


def sequential_batches(corpus, batch_size, num_steps, rng):
    """One epoch of consecutive windows over parallel streams (d2l's ``seq_data_iter_sequential``).

    From a random offset in ``[0, num_steps - 1]``, the corpus is split into
    ``batch_size`` equal streams, side by side (the tokens that don't divide
    evenly are left out); batch ``k`` holds window ``k`` of every stream. So
    column ``b`` of batch ``k + 1`` continues column ``b`` of batch ``k``:
    carry the recurrent state from one batch to the next (detached for
    truncated BPTT).

    The generator is drawn from once: ``rng.integers(num_steps)``. (d2l draws
    the offset from ``[0, num_steps]``; an offset of ``num_steps`` only drops a
    window, so it is left out here.)

    Parameters
    ----------
    corpus : array_like of int, shape (N,)
        Token ids, ``N >= num_steps * (batch_size + 1)``.
    batch_size, num_steps : int
    rng : numpy.random.Generator

    Returns
    -------
    list of (X, Y)
        ``X`` and ``Y`` int64 arrays of shape (num_steps, batch_size), ``Y``
        being ``X`` one token later.

    Examples
    --------
    >>> import numpy as np
    >>> batches = sequential_batches(np.arange(35), 2, 5, np.random.default_rng(0))
    >>> len(batches)
    3
    >>> (X0, _), (X1, _) = batches[:2]
    >>> bool((X1[0] == X0[-1] + 1).all())
    True
    """
    corpus, batch_size, num_steps = _check_args(corpus, batch_size, num_steps, rng,
                                                "sequential_batches")
    offset = int(rng.integers(num_steps))
    stream_length = (len(corpus) - offset - 1) // batch_size
    num_batches = stream_length // num_steps
    # starts[k, b]: stream b begins at offset + b * stream_length, window k num_steps * k later
    starts = (offset + stream_length * np.arange(batch_size)[None, :]
              + num_steps * np.arange(num_batches)[:, None])
    return _gather(corpus, starts, num_steps)


def stream_windows(corpus, batch_size, num_steps):
    """Deterministic consecutive windows for evaluation: every kept token scored once.

    Like :func:`sequential_batches` with offset 0 and no randomness: the
    corpus is split into ``batch_size`` streams of ``L = (N - 1) // batch_size``
    inputs each, and each stream is cut into consecutive windows of
    ``num_steps``; the last window is shorter when ``num_steps`` does not
    divide ``L``. Carry the recurrent state across windows. The targets are
    then ``corpus[1:batch_size * L + 1]``, each exactly once; the last
    ``(N - 1) % batch_size`` tokens don't fill every stream and are not scored
    (use ``batch_size=1`` to score every token but the first).

    Parameters
    ----------
    corpus : array_like of int, shape (N,)
        Token ids, ``N >= batch_size + 1``.
    batch_size, num_steps : int

    Returns
    -------
    list of (X, Y)
        int64 arrays of shape (t, batch_size), ``t = num_steps`` except
        perhaps in the last pair; ``Y`` is ``X`` one token later.

    Examples
    --------
    >>> import numpy as np
    >>> windows = stream_windows(np.arange(12), 2, 3)
    >>> [X.shape for X, Y in windows]
    [(3, 2), (2, 2)]
    >>> windows[1][1]
    array([[ 4,  9],
           [ 5, 10]])
    """
    corpus = _check_corpus(corpus)
    batch_size = check_int("batch_size", batch_size, 1)
    num_steps = check_int("num_steps", num_steps, 1)
    stream_length = (len(corpus) - 1) // batch_size
    if stream_length < 1:
        raise ValueError(f"corpus of length {len(corpus)} is too short for batch_size="
                         f"{batch_size}: stream_windows needs at least batch_size + 1 = "
                         f"{batch_size + 1} tokens")
    used = batch_size * stream_length
    inputs = np.ascontiguousarray(corpus[:used].reshape(batch_size, stream_length).T)
    targets = np.ascontiguousarray(corpus[1:used + 1].reshape(batch_size, stream_length).T)
    return [(inputs[t:t + num_steps], targets[t:t + num_steps])
            for t in range(0, stream_length, num_steps)]
