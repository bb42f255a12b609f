"""Data preparation in plain NumPy: from text or series to time-major arrays.

* :mod:`~fastrnn.data.vocab`: :func:`tokenize` and :class:`Vocab` (text <-> token ids);
* :mod:`~fastrnn.data.sampling`: language-model minibatches from a corpus of ids,
  :func:`random_batches`, :func:`sequential_batches` (training, driven by a
  :class:`numpy.random.Generator`) and :func:`stream_windows` (evaluation);
* :mod:`~fastrnn.data.windows`: :func:`sliding_windows` for time-series prediction;
* :mod:`~fastrnn.data.padding`: :func:`pad_sequences` and the lengths the layers take.

Every array produced is time-major, ``(T, B, ...)``, like the layers' inputs.

Examples
--------
>>> import numpy as np
>>> from fastrnn.data import Vocab, sequential_batches
>>> text = "the time machine by h g wells " * 10
>>> vocab = Vocab.from_text(text)
>>> corpus = vocab.encode(text)
>>> X, Y = sequential_batches(corpus, 4, 8, np.random.default_rng(0))[0]
>>> X.shape, X.dtype
((8, 4), dtype('int64'))
>>> vocab.decode(X[:, 0]) in text, bool((Y[:-1] == X[1:]).all())
(True, True)
"""

from .padding import pad_sequences
from .sampling import random_batches, sequential_batches, stream_windows
from .vocab import Vocab, tokenize
from .windows import sliding_windows

__all__ = ["tokenize", "Vocab", "random_batches", "sequential_batches", "stream_windows",
           "sliding_windows", "pad_sequences"]
