"""fastrnn.data: vocabulary, language-model sampling, sliding windows, padding."""

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastrnn.data import (Vocab, pad_sequences, random_batches, sequential_batches,
                          sliding_windows, stream_windows, tokenize)

TEXT = "The Time Traveller (for so it will be convenient to speak of him)\nwas expounding."


# -- d2l's samplers, transliterated: Python's ``random`` replaced by the same numpy draws -------

def d2l_random(corpus, batch_size, num_steps, rng):
    corpus = list(corpus)
    corpus = corpus[int(rng.integers(num_steps)):]           # random.randint(0, num_steps - 1)
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    initial_indices = [initial_indices[i] for i in rng.permutation(num_subseqs)]  # shuffle

    def data(pos):
        return corpus[pos: pos + num_steps]

    num_batches = num_subseqs // batch_size
    out = []
    for i in range(0, batch_size * num_batches, batch_size):
        initial_indices_per_batch = initial_indices[i: i + batch_size]
        X = [data(j) for j in initial_indices_per_batch]
        Y = [data(j + 1) for j in initial_indices_per_batch]
        out.append((np.array(X).T, np.array(Y).T))           # batch-major -> time-major
    return out


def d2l_sequential(corpus, batch_size, num_steps, rng):
    offset = int(rng.integers(num_steps))                    # d2l: random.randint(0, num_steps)
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = np.array(corpus[offset: offset + num_tokens]).reshape(batch_size, -1)
    Ys = np.array(corpus[offset + 1: offset + 1 + num_tokens]).reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    return [(Xs[:, i: i + num_steps].T, Ys[:, i: i + num_steps].T)
            for i in range(0, num_steps * num_batches, num_steps)]


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for (X, Y), (X_ref, Y_ref) in zip(got, expected):
        assert X.dtype == Y.dtype == np.int64
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(Y, Y_ref)


# -- tokenize ------------------------------------------------------------------------------------

def test_tokenize_char_keeps_every_character():
    assert tokenize(TEXT) == list(TEXT)
    assert tokenize(TEXT, "char", lowercase=True) == list(TEXT.lower())


def test_tokenize_word_matches_d2l():
    d2l = re.sub("[^A-Za-z]+", " ", TEXT).lower().split()
    assert tokenize(TEXT, "word", lowercase=True) == d2l
    assert tokenize("Don't stop, 2 Go!", "word") == ["Don", "t", "stop", "Go"]
    assert tokenize("", "word") == [] and tokenize("") == []


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: tokenize(b"abc"), TypeError, r"text must be a str, got bytes"),
    (lambda: tokenize("abc", "sentence"), ValueError, r"level must be one of 'char', 'word'"),
    (lambda: tokenize("abc", lowercase=1), TypeError, r"lowercase must be True or False"),
])
def test_tokenize_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# -- Vocab ---------------------------------------------------------------------------------------

def test_vocab_order_unk_reserved_then_frequency_then_token():
    tokens = ["b", "c", "a", "c", "b", "d", "c", "<pad>"]
    vocab = Vocab(tokens, reserved_tokens=["<pad>", "<eos>"])
    # counts: c 3, b 2, a 1, d 1 (tie broken by the string); <pad> stays at its reserved id
    assert vocab.tokens == ("<unk>", "<pad>", "<eos>", "c", "b", "a", "d")
    assert len(vocab) == 7 and vocab.unk == "<unk>" and vocab.unk_index == 0
    assert vocab.reserved_tokens == ("<pad>", "<eos>")
    assert [vocab[t] for t in vocab.tokens] == list(range(7))


def test_vocab_order_independent_of_token_order():
    tokens = list("mississippi river")
    assert Vocab(tokens) == Vocab(tokens[::-1])


def test_vocab_unknown_tokens_map_to_zero():
    vocab = Vocab.from_text("hello world", level="word")
    assert vocab["zebra"] == vocab.index("zebra") == 0
    assert "hello" in vocab and "zebra" not in vocab and ["hello"] not in vocab
    np.testing.assert_array_equal(vocab.encode("hello zebra world"),
                                  [vocab["hello"], 0, vocab["world"]])
    # a text containing the unk token itself: numbered once, at 0
    vocab = Vocab("a <unk> a <unk> <unk>".split())
    assert vocab.tokens == ("<unk>", "a")


def test_vocab_min_freq():
    vocab = Vocab(list("aaabbc"), min_freq=2)
    assert vocab.tokens == ("<unk>", "a", "b")
    np.testing.assert_array_equal(vocab.encode("abcx"), [1, 2, 0, 0])
    assert Vocab(list("aaabbc"), min_freq=4).tokens == ("<unk>",)


def test_vocab_custom_unk_and_empty():
    vocab = Vocab([], unk="?", reserved_tokens=("<bos>",))
    assert vocab.tokens == ("?", "<bos>")
    assert vocab.decode([0, 1]) == "?<bos>"


def test_encode_decode_round_trip_char_and_word():
    vocab = Vocab.from_text(TEXT)
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(TEXT),)
    assert vocab.decode(ids) == TEXT
    words = Vocab.from_text(TEXT, "word", lowercase=True)
    expected = tokenize(TEXT, "word", lowercase=True)
    assert words.decode(words.encode(TEXT)) == " ".join(expected)
    np.testing.assert_array_equal(words.encode(TEXT), words.encode(expected))
    assert words.encode("THE time").tolist() == [words["the"], words["time"]]
    assert vocab.encode("").shape == (0,) and vocab.encode([]).dtype == np.int64
    assert vocab.decode(np.array([], dtype=np.int64)) == vocab.decode([]) == ""


def test_vocab_to_dict_json_round_trip():
    for vocab in [Vocab.from_text(TEXT, min_freq=2, reserved_tokens=["<pad>"]),
                  Vocab.from_text(TEXT, "word", lowercase=True, unk="UNK")]:
        restored = Vocab.from_dict(json.loads(json.dumps(vocab.to_dict())))
        assert restored == vocab and hash(restored) == hash(vocab)
        assert restored.tokens == vocab.tokens and restored.unk == vocab.unk
        assert restored.level == vocab.level and restored.lowercase == vocab.lowercase
        assert restored.reserved_tokens == vocab.reserved_tokens
        np.testing.assert_array_equal(restored.encode(TEXT), vocab.encode(TEXT))


def test_vocab_equality():
    assert Vocab(list("abc")) == Vocab(list("cba"))
    assert Vocab(list("abc")) != Vocab(list("abc"), level="word")
    assert Vocab(list("abc")) != Vocab(list("abc"), lowercase=True)
    assert Vocab(list("abc")) != Vocab(list("abd"))
    assert Vocab(list("abc")) != "abc"
    assert repr(Vocab(list("abc"))) == "Vocab(size=4, level='char')"


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: Vocab("abc"), TypeError, r"tokens must be an iterable of str tokens, got a str; "
                                      r"use Vocab.from_text"),
    (lambda: Vocab(5), TypeError, r"tokens must be an iterable of str, got int"),
    (lambda: Vocab(["a", 1]), TypeError, r"tokens\[1\] must be a str, got int"),
    (lambda: Vocab(["a"], min_freq=0), ValueError, r"min_freq must be an int >= 1, got 0"),
    (lambda: Vocab(["a"], min_freq=1.5), TypeError, r"min_freq must be an int, got float"),
    (lambda: Vocab(["a"], reserved_tokens="<pad>"), TypeError,
     r"reserved_tokens must be a sequence of str, got a str '<pad>'"),
    (lambda: Vocab(["a"], reserved_tokens=None), TypeError,
     r"reserved_tokens must be a sequence of str, got NoneType"),
    (lambda: Vocab(["a"], reserved_tokens=[3]), TypeError, r"reserved_tokens\[0\] must be a str"),
    (lambda: Vocab(["a"], reserved_tokens=["x", "x"]), ValueError,
     r"unk and reserved_tokens must be distinct"),
    (lambda: Vocab(["a"], reserved_tokens=["<unk>"]), ValueError,
     r"unk and reserved_tokens must be distinct"),
    (lambda: Vocab(["a"], unk=None), TypeError, r"unk must be a str, got NoneType"),
    (lambda: Vocab(["a"], level="byte"), ValueError, r"level must be one of 'char', 'word'"),
    (lambda: Vocab(["a"], lowercase="no"), TypeError, r"lowercase must be True or False"),
    (lambda: Vocab(["a"]).index(1), TypeError, r"token must be a str, got int"),
    (lambda: Vocab(["a"])[["a"]], TypeError, r"token must be a str, got list"),
    (lambda: Vocab(["a"]).encode(5), TypeError,
     r"text_or_tokens must be a str or an iterable of str, got int"),
    (lambda: Vocab(["a"]).encode(["a", None]), TypeError, r"tokens\[1\] must be a str"),
    (lambda: Vocab(["a"]).decode([0.0, 1.0]), TypeError, r"ids must be integers, got an array"),
    (lambda: Vocab(["a"]).decode(["a"]), TypeError, r"ids must be integers"),
    (lambda: Vocab(["a"]).decode([[0, 1]]), ValueError, r"ids must be 1-D, got shape \(1, 2\)"),
    (lambda: Vocab(["a"]).decode([0, 2]), ValueError,
     r"ids must be in \[0, 2\) \(the vocabulary size\), got values from 0 to 2"),
    (lambda: Vocab(["a"]).decode([-1]), ValueError, r"ids must be in \[0, 2\)"),
    (lambda: Vocab.from_text(5), TypeError, r"text must be a str, got int"),
])
def test_vocab_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def _description(**changes):
    description = Vocab(list("ab"), reserved_tokens=["<pad>"]).to_dict()
    description.update(changes)
    return description


@pytest.mark.parametrize("description, error, pattern", [
    ([("tokens", ["<unk>"])], TypeError,
     r"description must be a dict from Vocab.to_dict, got list"),
    ({"tokens": ["<unk>"]}, ValueError, r"description is missing \['format', 'level', "
                                        r"'lowercase', 'num_reserved'\]"),
    (_description(format=2), ValueError, r"description has format 2; this version reads format 1"),
    (_description(tokens=[]), ValueError, r"description\['tokens'\] must be a non-empty list"),
    (_description(tokens="<unk>ab"), ValueError, r"description\['tokens'\] must be a non-empty"),
    (_description(tokens=["<unk>", 2]), TypeError, r"description\['tokens'\]\[1\] must be a str"),
    (_description(tokens=["<unk>", "a", "a"]), ValueError,
     r"tokens must be distinct, got \['a'\] more than once"),
    (_description(num_reserved=-1), ValueError, r"num_reserved'\] must be an int >= 0, got -1"),
    (_description(num_reserved=4), ValueError, r"num_reserved'\] must be < 4"),
    (_description(level="bpe"), ValueError, r"level must be one of 'char', 'word', got 'bpe'"),
    (_description(lowercase=None), TypeError, r"lowercase must be True or False"),
])
def test_vocab_from_dict_errors(description, error, pattern):
    with pytest.raises(error, match=pattern):
        Vocab.from_dict(description)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="abcde XYZ.\n", max_size=60), st.integers(1, 3))
def test_vocab_property_round_trip(text, min_freq):
    vocab = Vocab.from_text(text, min_freq=min_freq)
    ids = vocab.encode(text)
    decoded = vocab.decode(ids)
    counts = {c: text.count(c) for c in set(text)}
    # known characters come back, rare ones become <unk>; ids are ordered by count
    assert decoded == "".join(c if counts[c] >= min_freq else "<unk>" for c in text)
    kept = [counts[t] for t in vocab.tokens[1:]]
    assert kept == sorted(kept, reverse=True) and min(kept, default=min_freq) >= min_freq
    assert Vocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab


# -- language-model sampling ---------------------------------------------------------------------

SHAPES = [(1, 1), (2, 5), (3, 4), (4, 7), (5, 1)]


@pytest.mark.parametrize("batch_size, num_steps", SHAPES)
@pytest.mark.parametrize("length", [0, 1, 2, 13])  # added to the minimum length
def test_random_batches_match_d2l(batch_size, num_steps, length):
    corpus = np.random.default_rng(1).integers(0, 50, num_steps * (batch_size + 1) + length)
    for seed in range(5):
        got = random_batches(corpus, batch_size, num_steps, np.random.default_rng(seed))
        assert_same_batches(got, d2l_random(corpus, batch_size, num_steps,
                                            np.random.default_rng(seed)))


@pytest.mark.parametrize("batch_size, num_steps", SHAPES)
@pytest.mark.parametrize("length", [0, 1, 2, 13])
def test_sequential_batches_match_d2l(batch_size, num_steps, length):
    corpus = np.random.default_rng(2).integers(0, 50, num_steps * (batch_size + 1) + length)
    for seed in range(5):
        got = sequential_batches(corpus, batch_size, num_steps, np.random.default_rng(seed))
        assert_same_batches(got, d2l_sequential(corpus, batch_size, num_steps,
                                                np.random.default_rng(seed)))




@pytest.mark.parametrize("batch_size, num_steps, length", [(3, 4, 50), (2, 5, 35), (1, 3, 7)])
def test_random_batches_invariants(batch_size, num_steps, length):
    corpus = np.arange(length)  # a window's tokens are its positions
    for seed in range(10):
        rng = np.random.default_rng(seed)
        offset = int(np.random.default_rng(seed).integers(num_steps))
        batches = random_batches(corpus, batch_size, num_steps, rng)
        num_windows = (length - offset - 1) // num_steps
        assert len(batches) == num_windows // batch_size >= 1
        starts = []
        for X, Y in batches:
            assert X.shape == Y.shape == (num_steps, batch_size)
            assert X.flags.c_contiguous and Y.flags.c_contiguous
            np.testing.assert_array_equal(X, X[0] + np.arange(num_steps)[:, None])  # contiguous
            np.testing.assert_array_equal(Y, X + 1)                                 # shifted
            starts.extend(X[0].tolist())
        # distinct windows at offset + k * num_steps, drawn from the full set for that offset
        assert len(set(starts)) == len(starts) == len(batches) * batch_size
        assert set(starts) <= set(range(offset, offset + num_windows * num_steps, num_steps))
        if num_windows % batch_size == 0:
            assert set(starts) == set(range(offset, offset + num_windows * num_steps, num_steps))


@pytest.mark.parametrize("batch_size, num_steps, length", [(3, 4, 50), (2, 5, 35), (4, 1, 9)])
def test_sequential_batches_invariants(batch_size, num_steps, length):
    corpus = np.arange(length)
    for seed in range(10):
        offset = int(np.random.default_rng(seed).integers(num_steps))
        batches = sequential_batches(corpus, batch_size, num_steps, np.random.default_rng(seed))
        stream = (length - offset - 1) // batch_size
        assert len(batches) == stream // num_steps >= 1
        np.testing.assert_array_equal(batches[0][0][0], offset + stream * np.arange(batch_size))
        for k, (X, Y) in enumerate(batches):
            assert X.shape == Y.shape == (num_steps, batch_size)
            assert X.flags.c_contiguous and Y.flags.c_contiguous
            np.testing.assert_array_equal(X, X[0] + np.arange(num_steps)[:, None])
            np.testing.assert_array_equal(Y, X + 1)
            if k:  # column b of batch k continues column b of batch k - 1
                np.testing.assert_array_equal(X[0], batches[k - 1][0][-1] + 1)


def test_same_rng_state_same_epoch_and_resume():
    corpus = np.random.default_rng(0).integers(0, 30, 500)
    for sampler in (random_batches, sequential_batches):
        rng = np.random.default_rng(42)
        random_batches(corpus, 4, 6, rng)              # some earlier epoch
        state = rng.bit_generator.state                # checkpoint at the start of an epoch
        epoch = sampler(corpus, 4, 6, rng)
        next_epoch = sampler(corpus, 4, 6, rng)
        resumed = np.random.default_rng(7)             # a fresh process
        resumed.bit_generator.state = state
        assert_same_batches(sampler(corpus, 4, 6, resumed)[3:], epoch[3:])
        assert_same_batches(sampler(corpus, 4, 6, resumed), next_epoch)


def test_samplers_accept_lists_and_unsigned():
    corpus = list(range(30))
    for sampler in (random_batches, sequential_batches):
        a = sampler(corpus, 2, 3, np.random.default_rng(0))
        b = sampler(np.arange(30, dtype=np.uint16), 2, 3, np.random.default_rng(0))
        assert_same_batches(a, [(X, Y) for X, Y in b])


def test_samplers_minimum_length_always_gives_a_batch():
    for batch_size, num_steps in SHAPES:
        corpus = np.arange(num_steps * (batch_size + 1))
        for seed in range(20):
            for sampler in (random_batches, sequential_batches):
                assert len(sampler(corpus, batch_size, num_steps,
                                   np.random.default_rng(seed))) >= 1


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_samplers_property(batch_size, num_steps, extra, seed):
    corpus = np.arange(num_steps * (batch_size + 1) + extra) * 3  # positions recoverable: id // 3
    random = random_batches(corpus, batch_size, num_steps, np.random.default_rng(seed))
    sequential = sequential_batches(corpus, batch_size, num_steps, np.random.default_rng(seed))
    for X, Y in random + sequential:
        np.testing.assert_array_equal(Y, X + 3)
        np.testing.assert_array_equal(X, X[0] + 3 * np.arange(num_steps)[:, None])
    offsets = {int(X[0, 0] // 3) % num_steps for X, _ in random}
    assert len(offsets) == 1
    for (X0, _), (X1, _) in zip(sequential, sequential[1:]):
        np.testing.assert_array_equal(X1[0], X0[-1] + 3)


@pytest.mark.parametrize("length, batch_size, num_steps", [
    (12, 2, 3), (13, 2, 3), (14, 2, 3), (2, 1, 5), (11, 5, 1), (100, 3, 100), (6, 5, 2)])
def test_stream_windows_scores_each_kept_token_once(length, batch_size, num_steps):
    corpus = np.arange(length) + 100
    windows = stream_windows(corpus, batch_size, num_steps)
    stream = (length - 1) // batch_size
    assert [X.shape[0] for X, _ in windows] == [min(num_steps, stream - t)
                                                for t in range(0, stream, num_steps)]
    for X, Y in windows:
        assert X.dtype == Y.dtype == np.int64 and X.shape[1] == batch_size
        np.testing.assert_array_equal(Y, X + 1)
    inputs = np.concatenate([X for X, _ in windows])   # (stream, batch_size): columns = streams
    targets = np.concatenate([Y for _, Y in windows])
    np.testing.assert_array_equal(inputs.T.ravel(), corpus[:batch_size * stream])
    np.testing.assert_array_equal(np.sort(targets.ravel()), corpus[1:batch_size * stream + 1])


SAMPLER_ERRORS = [
    (dict(corpus=np.arange(10.0)), TypeError,
     r"corpus must be a 1-D array of integer token ids, got an array of dtype float64"),
    (dict(corpus=np.ones(30, bool)), TypeError, r"corpus must be .* dtype bool"),
    (dict(corpus="abcdefghijklmnopqrstuvwxyz"), TypeError, r"corpus must be .* got str"),
    (dict(corpus=np.zeros((5, 6), int)), ValueError,
     r"corpus must be a 1-D array of token ids, got shape \(5, 6\)"),
    (dict(batch_size=0), ValueError, r"batch_size must be an int >= 1, got 0"),
    (dict(batch_size=2.0), TypeError, r"batch_size must be an int, got float"),
    (dict(num_steps=0), ValueError, r"num_steps must be an int >= 1, got 0"),
    (dict(num_steps=True), TypeError, r"num_steps must be an int, got bool"),
]


@pytest.mark.parametrize("sampler", [random_batches, sequential_batches])
@pytest.mark.parametrize("kwargs, error, pattern", SAMPLER_ERRORS + [
    (dict(rng=0), TypeError, r"rng must be a numpy.random.Generator .* got int 0"),
    (dict(rng=np.random.RandomState(0)), TypeError, r"rng must be .* got RandomState"),
    (dict(corpus=np.arange(19)), ValueError,
     r"corpus of length 19 is too short for batch_size=3 and num_steps=5: \w+_batches needs at "
     r"least num_steps \* \(batch_size \+ 1\) = 20 tokens"),
    (dict(corpus=[]), ValueError, r"corpus of length 0 is too short"),
])
def test_sampler_errors(sampler, kwargs, error, pattern):
    args = dict(corpus=np.arange(100), batch_size=3, num_steps=5, rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        sampler(**args)


@pytest.mark.parametrize("kwargs, error, pattern", SAMPLER_ERRORS + [
    (dict(corpus=np.arange(3)), ValueError,
     r"corpus of length 3 is too short for batch_size=3: stream_windows needs at least "
     r"batch_size \+ 1 = 4 tokens"),
])
def test_stream_windows_errors(kwargs, error, pattern):
    args = dict(corpus=np.arange(100), batch_size=3, num_steps=5)
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        stream_windows(**args)


# -- sliding windows -----------------------------------------------------------------------------

@pytest.mark.parametrize("length, window, horizon, stride", [
    (10, 3, 1, 1), (10, 3, 2, 2), (10, 9, 1, 1), (10, 5, 5, 3), (7, 1, 1, 10)])
def test_sliding_windows_values(length, window, horizon, stride):
    series = np.random.default_rng(0).standard_normal((length, 2)).astype(np.float32)
    inputs, targets = sliding_windows(series, window, horizon, stride)
    M = (length - window - horizon) // stride + 1
    assert inputs.shape == (window, M, 2) and targets.shape == (horizon, M, 2)
    assert inputs.dtype == targets.dtype == np.float32
    for m in range(M):
        s = m * stride
        np.testing.assert_array_equal(inputs[:, m], series[s:s + window])
        np.testing.assert_array_equal(targets[:, m], series[s + window:s + window + horizon])


def test_sliding_windows_one_dimensional_series_gets_a_feature_axis():
    inputs, targets = sliding_windows([1, 2, 3, 4, 5], window=2)
    assert inputs.shape == (2, 3, 1) and targets.shape == (1, 3, 1)
    np.testing.assert_array_equal(targets[0, :, 0], [3, 4, 5])
    series = np.arange(8.0)
    inputs, _ = sliding_windows(series, 4)
    inputs[0, 0, 0] = -1.0  # new memory, not a view of the series
    assert series[0] == 0.0


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(series=np.array(["a", "b", "c"])), TypeError, r"series must be an array of integers "
                                                         r"or floats, got an array of dtype <U1"),
    (dict(series=np.zeros((4, 2, 1))), ValueError,
     r"series must have shape \(N,\) or \(N, F\), got \(4, 2, 1\)"),
    (dict(series=np.float64(3.0)), ValueError, r"series must have shape .* got \(\)"),
    (dict(window=0), ValueError, r"window must be an int >= 1, got 0"),
    (dict(window=2.0), TypeError, r"window must be an int, got float"),
    (dict(horizon=0), ValueError, r"horizon must be an int >= 1, got 0"),
    (dict(stride=0), ValueError, r"stride must be an int >= 1, got 0"),
    (dict(window=10), ValueError, r"window \+ horizon must be <= the series length 10, "
                                  r"got window=10 and horizon=1"),
    (dict(window=7, horizon=4), ValueError, r"window=7 and horizon=4"),
])
def test_sliding_windows_errors(kwargs, error, pattern):
    args = dict(series=np.arange(10.0), window=3)
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        sliding_windows(**args)


# -- padding -------------------------------------------------------------------------------------

def test_pad_sequences_token_ids():
    padded, lengths = pad_sequences([[1, 2, 3], [4], []])
    np.testing.assert_array_equal(padded, [[1, 4, 0], [2, 0, 0], [3, 0, 0]])
    assert padded.dtype == np.int64 and lengths.dtype == np.int64
    np.testing.assert_array_equal(lengths, [3, 1, 0])
    padded, _ = pad_sequences([[1, 2, 3], [4]], value=-1, time_major=False)
    np.testing.assert_array_equal(padded, [[1, 2, 3], [4, -1, -1]])


def test_pad_sequences_features_and_dtype():
    rng = np.random.default_rng(0)
    sequences = [rng.standard_normal((t, 3)) for t in (4, 1, 6)]
    padded, lengths = pad_sequences(sequences, dtype=np.float32, value=np.nan)
    assert padded.shape == (6, 3, 3) and padded.dtype == np.float32
    for b, seq in enumerate(sequences):
        np.testing.assert_array_equal(padded[:len(seq), b], seq.astype(np.float32))
        assert np.isnan(padded[len(seq):, b]).all()
    batch_first, _ = pad_sequences(sequences, time_major=False)
    assert batch_first.shape == (3, 6, 3) and batch_first.flags.c_contiguous
    np.testing.assert_array_equal(batch_first, np.nan_to_num(np.swapaxes(
        pad_sequences(sequences, value=0.0)[0], 0, 1)))
    mixed, _ = pad_sequences([np.ones(2, np.int32), np.ones(1, np.float32)])
    assert mixed.dtype == np.float64  # numpy.result_type
    empty, lengths = pad_sequences([np.zeros((0, 2))])
    assert empty.shape == (0, 1, 2) and lengths.tolist() == [0]


def test_pad_sequences_feeds_the_layers_lengths():
    import fastrnn as fr
    rng = np.random.default_rng(0)
    sequences = [rng.standard_normal((t, 3)).astype(np.float32) for t in (5, 2, 4)]
    x, lengths = pad_sequences(sequences)
    gru = fr.GRU(3, 4, seed=0)
    y, h = gru(x, lengths=lengths)
    for b, seq in enumerate(sequences):  # each sequence alone gives the same final state
        _, h_alone = gru(seq[:, None, :])
        np.testing.assert_allclose(h[:, b], h_alone[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(sequences=np.zeros((2, 3))), TypeError,
     r"sequences must be a list or tuple of arrays, got an array"),
    (dict(sequences="abc"), TypeError, r"sequences must be a list or tuple of arrays, got str"),
    (dict(sequences=[]), ValueError, r"sequences must hold at least one sequence, got an empty "
                                     r"list"),
    (dict(sequences=[[1, 2], ["a"]]), TypeError,
     r"sequences\[1\] must be an array of integers or floats"),
    (dict(sequences=[[1, 2], 3]), ValueError,
     r"sequences\[1\] must have shape \(T,\) or \(T, F\), got \(\)"),
    (dict(sequences=[np.zeros((2, 3, 1))]), ValueError, r"sequences\[0\] must have shape"),
    (dict(sequences=[np.zeros((2, 3)), np.zeros((2, 4))]), ValueError,
     r"same F; sequences\[0\] has shape \(2, 3\) and sequences\[1\] \(2, 4\)"),
    (dict(sequences=[np.zeros((2, 3)), np.zeros(2)]), ValueError, r"sequences\[1\] \(2,\)"),
    (dict(dtype="banana"), TypeError, r"dtype must be a numpy integer or floating dtype, "
                                      r"got 'banana'"),
    (dict(dtype=object), TypeError, r"dtype must be an integer or floating dtype, got object"),
    (dict(value=0.5), ValueError, r"value 0.5 is not representable in dtype int64"),
    (dict(value=300, dtype=np.uint8), ValueError, r"value 300 is not representable in dtype uint8"),
    (dict(value="x"), TypeError, r"value must be a real number, got str"),
    (dict(value=None), TypeError, r"value must be a real number, got NoneType"),
    (dict(time_major=0), TypeError, r"time_major must be True or False, got int"),
])
def test_pad_sequences_errors(kwargs, error, pattern):
    args = dict(sequences=[[1, 2, 3], [4]])
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        pad_sequences(**args)
