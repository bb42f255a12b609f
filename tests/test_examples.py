"""Smoke tests of the scripts in ``examples/``: each runs with ``--tiny`` and prints its summary.

The examples are scripts, not a package: they are loaded from their file
paths. Learning quality is not asserted at tiny sizes, only that the promised
numbers appear and are finite.
"""

import importlib.util
import math
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
NUMBER = r"([-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))"


def load(name):
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"fastrnn_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name, capsys, *argv):
    assert load(name).main(["--tiny", *argv]) == 0
    return capsys.readouterr().out


def finite(pattern, text):
    """The number(s) captured by ``pattern`` in ``text``, checked finite."""
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in:\n{text}"
    values = [float(group) for group in match.groups()]
    assert all(math.isfinite(v) for v in values), (pattern, values)
    return values


def test_char_lm(capsys, tmp_path):
    checkpoint = tmp_path / "lm.npz"
    out = run("char_lm", capsys, "--checkpoint", str(checkpoint), "--prefix", "the ")
    assert re.search(r"^\s+1\s+" + NUMBER + r"\s+" + NUMBER, out, re.M), out
    assert re.search(r"^\s+2\s+" + NUMBER + r"\s+" + NUMBER, out, re.M), out
    assert checkpoint.exists()
    assert "> 'the " in out and "(same as in memory: True)" in out
    finite(r"held-out perplexity of the restored model: " + NUMBER, out)


def test_char_lm_text_file(capsys, tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("The Time Traveller (for so it will be convenient to speak of him)\n" * 40)
    out = run("char_lm", capsys, "--text", str(text), "--prefix", "the ")
    assert str(text) in out and "> 'the " in out


def test_sequence_classification(capsys):
    out = run("sequence_classification", capsys)
    train, test = finite(r"final: train accuracy " + NUMBER + r", test accuracy " + NUMBER, out)
    assert 0 <= train <= 1 and 0 <= test <= 1
    assert "P(positive)" in out


def test_mean_pooling_gradient():
    """The hand-written pooling backward matches finite differences."""
    import numpy as np
    module = load("sequence_classification")
    rng = np.random.default_rng(0)
    h = rng.standard_normal((5, 3, 4))
    lengths = np.array([5, 2, 1])
    weights = rng.standard_normal((3, 4))
    pooled, tape = module.mean_pool_forward(h, lengths)
    assert np.allclose(pooled[1], h[:2, 1].mean(axis=0))
    dh = module.mean_pool_backward(tape, weights)
    eps = 1e-6
    numeric = np.zeros_like(h)
    for index in np.ndindex(h.shape):
        bumped = h.copy()
        bumped[index] += eps
        up = np.sum(module.mean_pool_forward(bumped, lengths)[0] * weights)
        bumped[index] -= 2 * eps
        down = np.sum(module.mean_pool_forward(bumped, lengths)[0] * weights)
        numeric[index] = (up - down) / (2 * eps)
    assert np.allclose(dh, numeric, atol=1e-8)


def test_forecasting(capsys):
    out = run("forecasting", capsys)
    gru, naive = finite(r"GRU " + NUMBER + r", naive 'repeat the last value' " + NUMBER, out)
    assert gru >= 0 and naive >= 0


def test_adding_problem(capsys):
    out = run("adding_problem", capsys)
    assert "RNN, sigma(W_hh) = 3, error_clip" in out
    finite(r"trivial baseline \(predict 1\.0\)\s+" + NUMBER, out)
    finite(r"full BPTT \(k=20\)\s+" + NUMBER, out)
    finite(r"truncated BPTT \(k=5\)\s+" + NUMBER, out)
    # per-step error norms were printed; with the per-step clip (1.0) every earlier step's
    # error is at most sigma(W_hh) * 1.0 = 3 (|tanh'| <= 1), however long the sequence
    row = re.search(r"RNN, sigma\(W_hh\) = 3, error_clip\s+(.*)", out).group(1)
    assert all(math.isfinite(float(v)) and float(v) <= 3.0 + 1e-6 for v in row.split()[1:])


@pytest.mark.parametrize("name", ["char_lm", "sequence_classification", "forecasting",
                                  "adding_problem"])
def test_runs_as_a_script(name):
    """``python examples/NAME.py --help`` works from the repository root."""
    result = subprocess.run([sys.executable, f"examples/{name}.py", "--help"],
                            cwd=EXAMPLES.parent, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--tiny" in result.stdout
