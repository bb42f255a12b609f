"""Text to token ids and back: :func:`tokenize` and :class:`Vocab`.

The recipe is d2l's (*Dive into Deep Learning*, "Text Preprocessing"): split
the text into tokens, count them, number them by frequency with index 0 kept
for the unknown token, and turn the text into a 1-D array of ids (the corpus
the samplers in :mod:`fastrnn.data.sampling` cut into minibatches).
"""

import collections
import re

import numpy as np

from .._validation import check_bool, check_choice, check_int, describe

LEVELS = ("char", "word")
_WORD = re.compile("[A-Za-z]+")
_FORMAT = 1  # version of the to_dict layout


def tokenize(text, level="char", *, lowercase=False):
    """Split ``text`` into tokens.

    Parameters
    ----------
    text : str
    level : {"char", "word"}, default "char"
        ``"char"``: every character is a token, spaces, punctuation and
        newlines included (``list(text)``). ``"word"``: a token is a run of
        ASCII letters ``[A-Za-z]+``; everything else (digits, punctuation,
        apostrophes, accented letters, white space) separates words and is
        dropped.
    lowercase : bool, default False
        Lower-case the text first. ``tokenize(text, "word", lowercase=True)``
        is exactly d2l's ``re.sub('[^A-Za-z]+', ' ', text).lower().split()``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> tokenize("Hi, Bob!")
    ['H', 'i', ',', ' ', 'B', 'o', 'b', '!']
    >>> tokenize("The Time-Machine, 1895.", "word", lowercase=True)
    ['the', 'time', 'machine']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {describe(text)}")
    check_choice("level", level, LEVELS)
    if check_bool("lowercase", lowercase):
        text = text.lower()
    return list(text) if level == "char" else _WORD.findall(text)


def _check_token(name, token):
    if not isinstance(token, str):
        raise TypeError(f"{name} must be a str, got {describe(token)}")
    return token


class Vocab:
    """Mapping between tokens and integer ids, d2l's ``Vocab``.

    Index 0 is the unknown token ``unk``; then come ``reserved_tokens`` in the
    order given; then every other token counted at least ``min_freq`` times,
    by decreasing count, ties broken by the token string (so the numbering
    depends only on the counts, not on where tokens first appear). A token
    equal to ``unk`` or to a reserved token is not numbered twice.

    Parameters
    ----------
    tokens : iterable of str
        The training tokens, e.g. ``tokenize(text, level)``. To build from raw
        text use :meth:`from_text`.
    min_freq : int, default 1
        Tokens seen fewer times map to ``unk``.
    reserved_tokens : sequence of str, default ()
        Always in the vocabulary, at ids 1, 2, ... (e.g. ``"<pad>"``, ``"<eos>"``).
    unk : str, default "<unk>"
    level : {"char", "word"}, default "char"
        How :meth:`encode` tokenizes a ``str`` and how :meth:`decode` joins
        tokens (``""`` for characters, ``" "`` for words).
    lowercase : bool, default False
        Whether :meth:`encode` lower-cases a ``str`` before tokenizing.

    Examples
    --------
    >>> vocab = Vocab.from_text("abracadabra")
    >>> vocab.tokens
    ('<unk>', 'a', 'b', 'r', 'c', 'd')
    >>> ids = vocab.encode("abcz")
    >>> ids
    array([1, 2, 4, 0])
    >>> vocab.decode(ids)
    'abc<unk>'
    >>> words = Vocab.from_text("the cat and the hat", level="word", min_freq=2)
    >>> len(words), words["the"], words["cat"]
    (2, 1, 0)
    """

    def __init__(self, tokens, min_freq=1, reserved_tokens=(), unk="<unk>", *, level="char",
                 lowercase=False):
        if isinstance(tokens, str):
            raise TypeError("tokens must be an iterable of str tokens, got a str; "
                            "use Vocab.from_text(text, level=...) to build from raw text")
        try:
            tokens = list(tokens)
        except TypeError:
            raise TypeError(f"tokens must be an iterable of str, got {describe(tokens)}") from None
        for i, token in enumerate(tokens):
            _check_token(f"tokens[{i}]", token)
        min_freq = check_int("min_freq", min_freq, 1)
        head = _head(unk, reserved_tokens)
        counts = collections.Counter(tokens)
        for token in head:
            counts.pop(token, None)
        kept = sorted((t for t, n in counts.items() if n >= min_freq),
                      key=lambda t: (-counts[t], t))
        self._build(head + kept, len(head) - 1, level, lowercase)

    @classmethod
    def from_text(cls, text, level="char", min_freq=1, reserved_tokens=(), unk="<unk>", *,
                  lowercase=False):
        """Build the vocabulary of ``tokenize(text, level, lowercase=lowercase)``.

        The other parameters are :class:`Vocab`'s.

        Examples
        --------
        >>> Vocab.from_text("To be, or not to be", "word", lowercase=True).tokens
        ('<unk>', 'be', 'to', 'not', 'or')
        """
        tokens = tokenize(text, level, lowercase=lowercase)
        return cls(tokens, min_freq, reserved_tokens, unk, level=level, lowercase=lowercase)

    def _build(self, tokens, num_reserved, level, lowercase):
        # ``tokens`` is already ordered: unk, reserved, counted (all distinct).
        self._level = check_choice("level", level, LEVELS)
        self._lowercase = check_bool("lowercase", lowercase)
        self._tokens = tuple(tokens)
        self._num_reserved = num_reserved
        self._index = {token: i for i, token in enumerate(self._tokens)}
        if len(self._index) != len(self._tokens):
            seen = collections.Counter(self._tokens)
            twice = sorted(t for t, n in seen.items() if n > 1)
            raise ValueError(f"tokens must be distinct, got {twice} more than once")

    # -- the mapping ---------------------------------------------------------------------------

    @property
    def tokens(self):
        """tuple of str: the token of each id (``vocab.tokens[i]``)."""
        return self._tokens

    @property
    def unk(self):
        """str: the unknown token, at id 0."""
        return self._tokens[0]

    @property
    def unk_index(self):
        """int: 0, the id of every token not in the vocabulary."""
        return 0

    @property
    def reserved_tokens(self):
        """tuple of str: the reserved tokens, at ids 1 to ``len(reserved_tokens)``."""
        return self._tokens[1:1 + self._num_reserved]

    @property
    def level(self):
        """str: ``"char"`` or ``"word"``."""
        return self._level

    @property
    def lowercase(self):
        """bool: whether :meth:`encode` lower-cases text."""
        return self._lowercase

    def __len__(self):
        return len(self._tokens)

    def __contains__(self, token):
        return isinstance(token, str) and token in self._index

    def index(self, token):
        """The id of ``token``, or 0 (``unk``) when it is not in the vocabulary."""
        return self._index.get(_check_token("token", token), 0)

    __getitem__ = index

    def encode(self, text_or_tokens):
        """Ids of a text or of a sequence of tokens.

        Parameters
        ----------
        text_or_tokens : str or iterable of str
            A ``str`` is tokenized as the vocabulary was built (its ``level``
            and ``lowercase``); any other iterable is taken as tokens.

        Returns
        -------
        ndarray of int64, shape (number of tokens,)
        """
        if isinstance(text_or_tokens, str):
            tokens = tokenize(text_or_tokens, self._level, lowercase=self._lowercase)
        else:
            try:
                tokens = list(text_or_tokens)
            except TypeError:
                raise TypeError("text_or_tokens must be a str or an iterable of str, got "
                                f"{describe(text_or_tokens)}") from None
        ids = [self._index.get(_check_token(f"tokens[{i}]", t), 0) for i, t in enumerate(tokens)]
        return np.array(ids, dtype=np.int64)

    def decode(self, ids):
        """The text of ``ids``: tokens joined by ``""`` (char level) or ``" "`` (word level).

        Parameters
        ----------
        ids : array_like of int, shape (N,)
            Each in ``[0, len(vocab))``; id 0 gives the ``unk`` token's text.

        Returns
        -------
        str
        """
        array = np.asarray(ids)
        if array.dtype.kind not in "iu" and not (array.size == 0 and array.dtype.kind == "f"):
            raise TypeError(f"ids must be integers, got {describe(array)}")
        if array.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {array.shape}")
        if array.size and (array.min() < 0 or array.max() >= len(self)):
            raise ValueError(f"ids must be in [0, {len(self)}) (the vocabulary size), "
                             f"got values from {array.min()} to {array.max()}")
        separator = "" if self._level == "char" else " "
        return separator.join(self._tokens[i] for i in array.tolist())

    # -- persistence and comparison -------------------------------------------------------------

    def to_dict(self):
        """A JSON-serialisable description; :meth:`from_dict` rebuilds an equal vocabulary.

        Examples
        --------
        >>> import json
        >>> vocab = Vocab.from_text("hello", reserved_tokens=["<eos>"])
        >>> Vocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab
        True
        """
        return {"format": _FORMAT, "tokens": list(self._tokens),
                "num_reserved": self._num_reserved, "level": self._level,
                "lowercase": self._lowercase}

    @classmethod
    def from_dict(cls, description):
        """The vocabulary described by ``description``, a :meth:`to_dict` result."""
        if not isinstance(description, dict):
            raise TypeError(f"description must be a dict from Vocab.to_dict, "
                            f"got {describe(description)}")
        missing = {"format", "tokens", "num_reserved", "level", "lowercase"} - set(description)
        if missing:
            raise ValueError(f"description is missing {sorted(missing)}; "
                             "expected a dict from Vocab.to_dict")
        if description["format"] != _FORMAT:
            raise ValueError(f"description has format {description['format']!r}; "
                             f"this version reads format {_FORMAT}")
        tokens = description["tokens"]
        if not isinstance(tokens, list) or not tokens:
            raise ValueError("description['tokens'] must be a non-empty list of str, "
                             f"got {describe(tokens)}")
        for i, token in enumerate(tokens):
            _check_token(f"description['tokens'][{i}]", token)
        num_reserved = check_int("description['num_reserved']", description["num_reserved"], 0)
        if num_reserved >= len(tokens):
            raise ValueError(f"description['num_reserved'] must be < {len(tokens)} "
                             f"(the number of tokens), got {num_reserved}")
        vocab = cls.__new__(cls)
        vocab._build(tokens, num_reserved, description["level"],
                     description["lowercase"])
        return vocab

    def _key(self):
        return (self._tokens, self._num_reserved, self._level, self._lowercase)

    def __eq__(self, other):
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"Vocab(size={len(self)}, level={self._level!r})"


def _head(unk, reserved_tokens):
    """``[unk, *reserved_tokens]``, checked: strings, distinct."""
    _check_token("unk", unk)
    if isinstance(reserved_tokens, str):
        raise TypeError(f"reserved_tokens must be a sequence of str, got a str "
                        f"{reserved_tokens!r}; write [{reserved_tokens!r}]")
    try:
        reserved = list(reserved_tokens)
    except TypeError:
        raise TypeError(f"reserved_tokens must be a sequence of str, "
                        f"got {describe(reserved_tokens)}") from None
    for i, token in enumerate(reserved):
        _check_token(f"reserved_tokens[{i}]", token)
    head = [unk] + reserved
    if len(set(head)) != len(head):
        raise ValueError(f"unk and reserved_tokens must be distinct, got unk={unk!r} and "
                         f"reserved_tokens={reserved}")
    return head
