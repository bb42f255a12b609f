"""Every cell and variant against the independent float64 NumPy reference."""

import numpy as np
import pytest
from hypothesis import given, settings

from . import reference
from ._compare import assert_close
from ._configs import (build_layer, cell_options, layer_configs, random_call, states_batched,
                       to_time_major)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)],
                         ids=["float64", "float32"])
@settings(max_examples=100, deadline=None, derandomize=True)
@given(config=layer_configs())
def test_forward_matches_reference(config, dtype, tol):
    layer = build_layer(config, dtype)
    x, hx, lengths, _, _ = random_call(layer, config, dtype)
    y, h_n = layer(x, hx, lengths)
    if hx is None:
        hx = tuple(np.zeros_like(s) for s in states_batched(layer, config, h_n))
    else:
        hx = states_batched(layer, config, hx)
    kind = config["cell"].split("-")[0]
    ref_y, ref_states = reference.layer_forward(
        kind, layer.state_dict(), to_time_major(layer, config, x), hx, lengths,
        layer.num_layers, layer.bidirectional, proj_size=config["proj_size"],
        **cell_options(config["cell"]))
    assert_close(to_time_major(layer, config, y), ref_y, tol, "y")
    for got, want in zip(states_batched(layer, config, h_n), ref_states):
        assert_close(got, want, tol, "h_n")


def test_lengths_zero_output_and_final_state():
    """Past its length a sequence's outputs are exactly zero and its state is frozen."""
    import fastrnn as fr
    layer = fr.LSTM(3, 4, bidirectional=True, dtype=np.float64, seed=1)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    y, (h_n, c_n) = layer(x, lengths=[6, 2])
    assert np.all(y[2:, 1] == 0.0)
    short, (h_short, _) = layer(x[:2, 1:2])
    # Same math on a smaller batch: BLAS may round differently, so not bitwise.
    np.testing.assert_allclose(y[:2, 1:2], short, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h_n[:, 1:2], h_short, rtol=1e-13, atol=1e-15)
