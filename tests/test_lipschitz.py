"""Spectral projection, the Weyl update budget, and one-step Jacobian bounds.

Jacobians are checked against central finite differences of the independent
float64 one-step references in :mod:`tests.reference`; sigmas against SVDs.
"""

import gc

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import fastrnn as fr
from fastrnn.training import lipschitz as lip
from fastrnn.training.lipschitz import SpectralBudget, lipschitz_bound, project_spectral

from . import reference
from ._configs import CELLS, cell_options


# --------------------------------------------------------------------- helpers
def _build(cell, hidden=5, input_size=3, proj=0, num_layers=1, bidirectional=False, seed=0,
           scale=1.0, dtype=np.float64):
    kind = cell.split("-")[0]
    options = cell_options(cell)
    if kind == "lstm":
        options["proj_size"] = proj
    cls = {"rnn": fr.RNN, "lstm": fr.LSTM, "gru": fr.GRU}[kind]
    layer = cls(input_size, hidden, num_layers=num_layers, bidirectional=bidirectional,
                dtype=dtype, seed=seed, **options)
    layer.flat_params[...] *= scale
    return layer


def _short(layer, suffix="_l0"):
    """The parameters of one layer/direction under their short names, float64."""
    return {name[:-len(suffix)]: np.asarray(value, np.float64)
            for name, value in layer.params.items() if name.endswith(suffix)}


def _cell(spec):
    return dict(nonlinearity=spec.nonlinearity, coupled=spec.coupled, peephole=spec.peephole,
                proj_size=spec.proj_size, reset_after=spec.reset_after)


def _fd_jacobian(layer, p, x, state, eps=1e-6):
    """Central differences of the reference step's state (h[, c]) w.r.t. the previous state."""
    sizes = [s.size for s in state]
    flat = np.concatenate(state)

    def step(vector):
        parts = tuple(np.split(vector, np.cumsum(sizes)[:-1]))
        return np.concatenate(reference._step(layer.spec.kind, p, x, parts, _cell(layer.spec)))

    jac = np.empty((flat.size, flat.size))
    for k in range(flat.size):
        bump = np.zeros_like(flat)
        bump[k] = eps
        jac[:, k] = (step(flat + bump) - step(flat - bump)) / (2 * eps)
    return jac


def _random_state(layer, batch, rng, magnitude=1.0):
    rows = layer.num_layers * layer.num_directions
    h = magnitude * rng.uniform(-1, 1, (rows, batch, layer.spec.output_size))
    if layer.spec.has_cell_state:
        return h, magnitude * rng.uniform(-1, 1, (rows, batch, layer.hidden_size))
    return h


def _as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


JACOBIAN_CASES = [(cell, 0) for cell in CELLS] + [("lstm", 2), ("lstm-peephole-coupled", 3)]


# --------------------------------------------------------- one-step Jacobians
@pytest.mark.parametrize("cell,proj", JACOBIAN_CASES)
def test_closed_form_jacobian_matches_finite_differences(cell, proj):
    rng = np.random.default_rng(1)
    layer = _build(cell, proj=proj, scale=2.5, seed=3)
    p = _short(layer)
    x = rng.standard_normal((2, 3))
    state = tuple(s[0] for s in _as_tuple(_random_state(layer, 2, rng, 1.5)))
    new_state, jac = lip._STEPS[layer.spec.kind](layer.spec, p, x, state)
    for b in range(2):
        one = tuple(s[b] for s in state)
        want = _fd_jacobian(layer, p, x[b], one)
        np.testing.assert_allclose(jac[b], want, rtol=0, atol=1e-7 * max(1, np.abs(want).max()))
        expected_state = reference._step(layer.spec.kind, p, x[b], one, _cell(layer.spec))
        for got, expected in zip(new_state, expected_state):
            np.testing.assert_allclose(got[b], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell,proj", [("rnn-tanh", 0), ("lstm-peephole", 2), ("gru", 0),
                                       ("gru-reset-before", 0)])
def test_empirical_norms_are_those_of_the_trajectory(cell, proj):
    """Entry (t, b) is ||J|| at the reference trajectory's state s_{t-1}, by finite differences."""
    rng = np.random.default_rng(2)
    layer = _build(cell, hidden=4, proj=proj, scale=2.0, seed=5)
    x = rng.standard_normal((4, 2, 3))
    hx = _random_state(layer, 2, rng)
    empirical = lipschitz_bound(layer, x, hx)["weight_hh_l0"]["empirical"]
    assert empirical.shape == (4, 2)
    p = _short(layer)
    state_dict = {k: np.asarray(v) for k, v in layer.params.items()}
    for t in range(4):
        _, states = reference.layer_forward(layer.spec.kind, state_dict, x[:t], _as_tuple(hx),
                                            None, 1, False, **_cell(layer.spec))
        for b in range(2):
            jac = _fd_jacobian(layer, p, x[t, b], tuple(s[0, b] for s in states))
            assert abs(empirical[t, b] - np.linalg.norm(jac, 2)) <= 1e-6 * empirical[t, b]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_empirical_never_exceeds_the_weight_bound(cell, scale):
    rng = np.random.default_rng(3)
    for seed in range(3):
        proj = 2 if cell.startswith("lstm") and seed == 2 else 0
        layer = _build(cell, hidden=6, proj=proj, scale=scale, seed=seed, num_layers=2)
        x = 3.0 * rng.standard_normal((12, 3, 3))
        hx = _random_state(layer, 3, rng, magnitude=2.0) if seed else None
        result = lipschitz_bound(layer, x, hx)
        assert sorted(result) == ["weight_hh_l0", "weight_hh_l1"]
        for name, entry in result.items():
            assert entry["empirical"].shape == (12, 3)
            assert np.all(np.isfinite(entry["empirical"]))
            assert entry["empirical"].max() <= entry["bound"], (name, entry)
            if layer.spec.kind == "rnn":
                assert entry["bound"] == entry["sigma"]


def test_bound_without_x_and_its_state_assumptions():
    lstm = _build("lstm", hidden=4)
    entry = lipschitz_bound(lstm)["weight_hh_l0"]
    assert entry["empirical"] is None and entry["steps"] == 1 and entry["cell_bound"] == 0.0
    longer = lipschitz_bound(lstm, steps=50)["weight_hh_l0"]
    assert longer["cell_bound"] == 49.0 and longer["bound"] > entry["bound"]
    c0 = np.full((1, 2, 4), 3.0)
    with_hx = lipschitz_bound(lstm, hx=(np.zeros((1, 2, 4)), c0))["weight_hh_l0"]
    assert with_hx["cell_bound"] == 3.0
    coupled = lipschitz_bound(_build("lstm-coupled", hidden=4), steps=50)["weight_hh_l0"]
    assert coupled["cell_bound"] == 1.0  # convex combination: |c| stays <= max(|c0|, 1)
    gru = _build("gru", hidden=4)
    assert lipschitz_bound(gru, hx=np.full((1, 4), -2.0))["weight_hh_l0"]["state_bound"] == 2.0
    assert lipschitz_bound(gru)["weight_hh_l0"]["bound"] > 1.0


def test_bidirectional_and_stacked_layers_are_measured_along_their_own_inputs():
    rng = np.random.default_rng(4)
    layer = _build("gru", hidden=3, num_layers=2, bidirectional=True, scale=2.0, seed=1)
    x = rng.standard_normal((5, 2, 3))
    result = lipschitz_bound(layer, x)
    assert sorted(result) == ["weight_hh_l0", "weight_hh_l0_reverse", "weight_hh_l1",
                              "weight_hh_l1_reverse"]
    # the reverse direction is a forward layer with the reverse weights on reversed time
    single = _build("gru", hidden=3)
    single.load_state_dict({k + "_l0": v for k, v in _short(layer, "_l0_reverse").items()})
    want = lipschitz_bound(single, x[::-1].copy())["weight_hh_l0"]["empirical"][::-1]
    np.testing.assert_allclose(result["weight_hh_l0_reverse"]["empirical"], want, rtol=1e-12)
    # layer 1 reads layer 0's (two-direction) output
    second = fr.GRU(6, 3, bidirectional=True, dtype=np.float64)
    second.load_state_dict({k.replace("_l1", "_l0"): v for k, v in layer.params.items()
                            if "_l1" in k})
    first = fr.GRU(3, 3, bidirectional=True, dtype=np.float64)
    first.load_state_dict({k: v for k, v in layer.params.items() if "_l0" in k})
    y0, _ = first(x)
    want = lipschitz_bound(second, y0)
    for suffix in ("_l0", "_l0_reverse"):
        np.testing.assert_allclose(result["weight_hh" + suffix.replace("l0", "l1")]["empirical"],
                                   want["weight_hh" + suffix]["empirical"], rtol=1e-10)


def test_sequential_layers_are_keyed_by_index_and_fed_their_inputs():
    rng = np.random.default_rng(5)
    model = fr.Sequential([fr.Linear(3, 4, dtype=np.float64, seed=0),
                           fr.RNN(4, 5, dtype=np.float64, seed=1),
                           fr.Linear(5, 4, dtype=np.float64, seed=2),
                           fr.LSTM(4, 3, dtype=np.float64, seed=3)])
    x = rng.standard_normal((6, 2, 3))
    result = lipschitz_bound(model, x)
    assert sorted(result) == ["1.weight_hh_l0", "3.weight_hh_l0"]
    y1, _ = model.layers[1](model.layers[0](x))
    want = lipschitz_bound(model.layers[3], model.layers[2](y1))["weight_hh_l0"]["empirical"]
    np.testing.assert_allclose(result["3.weight_hh_l0"]["empirical"], want, rtol=1e-10)
    assert all(e["empirical"].max() <= e["bound"] for e in result.values())


def test_batch_first_and_unbatched_inputs_give_time_major_norms():
    rng = np.random.default_rng(6)
    layer = _build("lstm", hidden=3)
    x = rng.standard_normal((5, 2, 3))
    want = lipschitz_bound(layer, x)["weight_hh_l0"]["empirical"]
    bf = fr.LSTM(3, 3, batch_first=True, dtype=np.float64)
    bf.load_state_dict(layer.state_dict())
    got = lipschitz_bound(bf, x.transpose(1, 0, 2).copy())["weight_hh_l0"]["empirical"]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    one = lipschitz_bound(layer, x[:, 0])["weight_hh_l0"]["empirical"]
    np.testing.assert_allclose(one, want[:, :1], rtol=1e-12)


# ----------------------------------------------------------- sigma estimation
@pytest.fixture
def one_blas_thread():
    """Thousands of tiny products: threaded BLAS only oversubscribes a busy machine."""
    with threadpool_limits(1):
        yield


def _random_matrices(count, seed=0):
    rng = np.random.default_rng(seed)
    for index in range(count):
        n, gates = int(rng.integers(1, 70)), int(rng.choice([1, 3, 4]))
        kind = index % 3
        if kind == 0:
            w = rng.standard_normal((gates * n, n)) * rng.uniform(0.01, 10)
        elif kind == 1:  # PyTorch's initialisation
            w = rng.uniform(-1, 1, (gates * n, n)) / np.sqrt(n)
        else:  # nearly flat spectrum: the hard case for power iteration
            q, _ = np.linalg.qr(rng.standard_normal((gates * n, n)))
            w = q * rng.uniform(0.9, 1.0, n)
        yield w


def test_cold_estimate_is_a_lower_bound_within_two_percent(one_blas_thread):
    for w in _random_matrices(150):
        true = np.linalg.norm(w, 2)
        estimate = lip._estimate_sigma({}, "w", w)
        assert 0.98 * true <= estimate <= true * (1 + 1e-12)


def test_warm_estimate_tracks_a_slowly_changing_matrix(one_blas_thread):
    rng = np.random.default_rng(7)
    for w in _random_matrices(30, seed=1):
        memory = {}
        lip._estimate_sigma(memory, "w", w)
        for _ in range(15):
            w = w + 0.01 * np.linalg.norm(w, 2) / np.sqrt(w.size) * rng.standard_normal(w.shape)
            true = np.linalg.norm(w, 2)
            assert 0.98 * true <= lip._estimate_sigma(memory, "w", w) <= true * (1 + 1e-12)


def test_warm_start_is_remembered_per_model_and_forgotten_with_it(monkeypatch):
    calls = []
    original = lip._lanczos_sigma
    monkeypatch.setattr(lip, "_lanczos_sigma",
                        lambda m, v, steps: calls.append(steps) or original(m, v, steps))
    model = _build("lstm", hidden=40, seed=1)
    for _ in range(3):
        before = project_spectral(model, 100.0)
        true = np.linalg.norm(model.params["weight_hh_l0"], 2)
        assert 0.98 * true <= before["weight_hh_l0"] <= true * (1 + 1e-12)
    assert calls == [lip._COLD_STEPS, lip._WARM_STEPS, lip._WARM_STEPS]
    assert set(lip._POWER_STATE[model]) == {"weight_hh_l0"}
    count = len(lip._POWER_STATE)
    del model
    gc.collect()
    assert len(lip._POWER_STATE) == count - 1


# ------------------------------------------------------------------ projection
def test_exact_projection_caps_and_leaves_the_rest_bitwise():
    model = _build("lstm", hidden=8, num_layers=2, seed=2)
    sigma1 = np.linalg.norm(model.params["weight_hh_l1"], 2)
    max_sigma = 1.1 * sigma1
    model.params["weight_hh_l0"][...] *= 20
    sigma0 = np.linalg.norm(model.params["weight_hh_l0"], 2)
    snapshot = model.state_dict()
    before = project_spectral(model, max_sigma, exact=True)
    assert before == pytest.approx({"weight_hh_l0": sigma0, "weight_hh_l1": sigma1}, rel=1e-14)
    after = np.linalg.norm(model.params["weight_hh_l0"], 2)
    assert abs(after - max_sigma) <= 1e-12 * max_sigma
    np.testing.assert_allclose(model.params["weight_hh_l0"],
                               snapshot["weight_hh_l0"] * max_sigma / sigma0, rtol=1e-15)
    for name, value in snapshot.items():
        if name != "weight_hh_l0":
            np.testing.assert_array_equal(model.params[name], value)


def test_estimated_projection_lands_within_two_percent_above():
    for seed, cell in enumerate(["rnn-relu", "gru", "lstm-coupled", "lstm"]):
        model = _build(cell, hidden=30, seed=seed, scale=5.0)
        project_spectral(model, 0.5)
        after = np.linalg.norm(model.params["weight_hh_l0"], 2)
        assert 0.5 * (1 - 1e-12) <= after <= 0.5 * 1.02


def test_projection_of_a_sequential_and_float32():
    model = fr.Sequential([fr.Embedding(5, 3, seed=0), fr.GRU(3, 6, seed=1),
                           fr.RNN(6, 4, bidirectional=True, seed=2)])
    model.flat_params[...] *= 10
    before = project_spectral(model, 0.8, exact=True)
    assert sorted(before) == ["1.weight_hh_l0", "2.weight_hh_l0", "2.weight_hh_l0_reverse"]
    for name in before:
        sigma = np.linalg.norm(model.params[name].astype(np.float64), 2)
        assert abs(sigma - 0.8) <= 1e-6 * 0.8
        assert model.params[name].dtype == np.float32
    # the layers see it: their views are the model's
    assert np.shares_memory(model.layers[1].params["weight_hh_l0"], model.flat_params)


# --------------------------------------------------------------------- budget
class FakeOptimizer:
    """Adds a random update to every parameter in place; remembers what it wrote."""

    def __init__(self, model, scales, seed=0):
        self.model, self.scales = model, scales
        self.rng = np.random.default_rng(seed)
        self.written = {}

    def step(self):
        for name, value in self.model.params.items():
            scale = self.scales.get(name, 0.01)
            value += scale * self.rng.standard_normal(value.shape)
            self.written[name] = value.copy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("refresh_every", [None, 7])
def test_budget_keeps_sigma_capped_and_spares_matrices_with_room(dtype, refresh_every):
    model = _build("lstm", hidden=6, num_layers=2, seed=3, dtype=dtype)
    max_sigma = 2.0  # weight_hh_l0 starts at 1.48, weight_hh_l1 at 1.58
    budget = SpectralBudget(model, max_sigma, refresh_every=refresh_every)
    optimizer = FakeOptimizer(model, {"weight_hh_l0": 0.02, "weight_hh_l1": 1e-4})
    seen = []
    for _ in range(120):
        scales = budget.step(optimizer)
        seen.append(scales["weight_hh_l0"])
        for name, bound in budget.bounds.items():
            sigma = np.linalg.norm(model.params[name].astype(np.float64), 2)
            assert sigma <= max_sigma * (1 + 1e-12)
            assert sigma <= bound * (1 + 1e-12) and bound <= max_sigma
        # weight_hh_l1 is far from the cap: the optimizer's update, bit for bit
        assert scales["weight_hh_l1"] == 1.0
        np.testing.assert_array_equal(model.params["weight_hh_l1"],
                                      optimizer.written["weight_hh_l1"])
        np.testing.assert_array_equal(model.params["bias_hh_l0"], optimizer.written["bias_hh_l0"])
    seen = np.array(seen)
    assert scales == budget.last_scales and budget.steps == 120
    assert seen[0] == 1.0 and np.any((seen > 0) & (seen < 1)) and seen.min() >= 0
    if refresh_every:  # refreshing gives back slack: partial steps keep coming
        assert np.sum((seen > 0) & (seen < 1)) > 5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_budget_projects_a_matrix_that_starts_above(dtype):
    model = _build("gru", hidden=5, seed=8, dtype=dtype)
    model.params["weight_hh_l0"][...] *= 10
    sigma = np.linalg.norm(model.params["weight_hh_l0"].astype(np.float64), 2)
    budget = SpectralBudget(model, 1.0)
    assert budget.initial_sigmas["weight_hh_l0"] == pytest.approx(sigma, rel=1e-12)
    after = np.linalg.norm(model.params["weight_hh_l0"].astype(np.float64), 2)
    assert budget.bounds["weight_hh_l0"] == after <= 1.0
    assert after >= 1.0 - 1e-6


def test_budget_scales_an_update_that_overshoots():
    rnn = _build("rnn-tanh", hidden=4, seed=4)
    sigma = np.linalg.norm(rnn.params["weight_hh_l0"], 2)
    budget = SpectralBudget(rnn, sigma + 0.1)
    assert budget.bounds["weight_hh_l0"] == pytest.approx(sigma, rel=1e-14)
    old = rnn.params["weight_hh_l0"].copy()
    delta = np.ones((4, 4))  # ||delta||_F = 4 > 0.1 of room

    class Push:
        def step(self):
            rnn.params["weight_hh_l0"][...] += delta

    scale = budget.step(Push())["weight_hh_l0"]
    assert 0.0 < scale < 0.1 / 4
    np.testing.assert_allclose(rnn.params["weight_hh_l0"], old + scale * delta, rtol=1e-15)
    assert budget.bounds["weight_hh_l0"] <= sigma + 0.1
    assert budget.bounds["weight_hh_l0"] == pytest.approx(sigma + 0.1, rel=1e-12)
    assert budget.step(Push())["weight_hh_l0"] == 0.0  # no room left until a refresh
    np.testing.assert_array_equal(rnn.params["weight_hh_l0"], old + scale * delta)


def test_budget_step_does_no_svd_unless_refreshing(monkeypatch):
    model = _build("gru", hidden=5, num_layers=2, seed=5)
    optimizer = FakeOptimizer(model, {})
    quiet = SpectralBudget(model, 3.0)
    refreshing = SpectralBudget(model, 3.0, refresh_every=4)
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("SVD called inside step")

    monkeypatch.setattr(np.linalg, "svd", forbidden)
    monkeypatch.setattr(np.linalg, "norm", forbidden)
    for _ in range(10):
        quiet.step(optimizer)
    assert not calls
    for _ in range(3):
        refreshing.step(optimizer)
    with pytest.raises(AssertionError, match="SVD called"):
        refreshing.step(optimizer)  # the 4th step refreshes
    monkeypatch.undo()
    refreshing.refresh()
    for name, bound in refreshing.bounds.items():
        assert bound == pytest.approx(np.linalg.norm(model.params[name], 2), rel=1e-14)


def test_refresh_recovers_the_slack():
    model = _build("rnn-tanh", hidden=6, seed=6)
    optimizer = FakeOptimizer(model, {"weight_hh_l0": 0.02})
    loose = SpectralBudget(model, 1.5)
    for _ in range(40):
        loose.step(optimizer)
    model2 = _build("rnn-tanh", hidden=6, seed=6)
    tight = SpectralBudget(model2, 1.5, refresh_every=5)
    optimizer2 = FakeOptimizer(model2, {"weight_hh_l0": 0.02})
    for _ in range(40):
        tight.step(optimizer2)
    exact = np.linalg.norm(model2.params["weight_hh_l0"], 2)
    assert tight.bounds["weight_hh_l0"] == pytest.approx(exact, rel=1e-14)
    assert loose.bounds["weight_hh_l0"] > np.linalg.norm(model.params["weight_hh_l0"], 2)


def test_budget_restores_on_a_nonfinite_update():
    model = _build("rnn-tanh", hidden=3, num_layers=2)
    budget = SpectralBudget(model, 5.0)
    saved = {k: v.copy() for k, v in model.params.items() if "weight_hh" in k}

    class Broken:
        def step(self):
            model.params["weight_hh_l1"][0, 0] = np.nan
            model.params["weight_hh_l0"][...] += 0.01

    with pytest.raises(FloatingPointError, match="weight_hh_l1"):
        budget.step(Broken())
    for name, value in saved.items():
        np.testing.assert_array_equal(model.params[name], value)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("value,error", [(0.0, ValueError), (-1.0, ValueError),
                                         (float("nan"), ValueError), (float("inf"), ValueError),
                                         ("1", TypeError), (True, TypeError), (None, TypeError)])
def test_bad_max_sigma(value, error):
    model = _build("rnn-tanh")
    with pytest.raises(error, match="max_sigma must be a positive finite"):
        project_spectral(model, value)
    with pytest.raises(error, match="max_sigma"):
        SpectralBudget(model, value)


def test_bad_models():
    with pytest.raises(TypeError, match="model must be a recurrent layer or Sequential"):
        project_spectral(object(), 1.0)
    no_recurrent = fr.Sequential([fr.Linear(2, 3, dtype=np.float64)])
    with pytest.raises(ValueError, match=r"weight_hh\*.*got parameters \['0.bias', "):
        project_spectral(no_recurrent, 1.0)
    with pytest.raises(ValueError, match="weight_hh"):
        SpectralBudget(fr.Linear(2, 3), 1.0)
    with pytest.raises(ValueError, match="Sequential without one"):
        lipschitz_bound(no_recurrent)
    with pytest.raises(TypeError, match="must be an RNN, LSTM, GRU or Sequential, got Linear"):
        lipschitz_bound(fr.Linear(2, 3))
    model = _build("gru")
    model.params["weight_hh_l0"][1, 1] = np.inf
    with pytest.raises(ValueError, match=r"params\['weight_hh_l0'\] holds NaN or infinity"):
        project_spectral(model, 1.0)


def test_bad_arguments():
    model = _build("lstm", hidden=4)
    with pytest.raises(TypeError, match="exact must be True or False"):
        project_spectral(model, 1.0, exact="yes")
    with pytest.raises(ValueError, match="refresh_every must be an int >= 1, got 0"):
        SpectralBudget(model, 1.0, refresh_every=0)
    with pytest.raises(TypeError, match="refresh_every must be an int"):
        SpectralBudget(model, 1.0, refresh_every=2.5)
    with pytest.raises(TypeError, match="optimizer must have a step"):
        SpectralBudget(model, 1.0).step(object())
    with pytest.raises(ValueError, match=r"x must have input_size=3 .* got shape \(5, 2, 4\)"):
        lipschitz_bound(model, np.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match="x must be 3-D"):
        lipschitz_bound(model, np.zeros(5))
    with pytest.raises(TypeError, match="x must have dtype float64"):
        lipschitz_bound(model, np.zeros((5, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"hx\[1\] must have shape \(1, 2, 4\)"):
        lipschitz_bound(model, np.zeros((5, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((1, 3, 4))))
    with pytest.raises(TypeError, match="hx must be a pair"):
        lipschitz_bound(model, np.zeros((5, 2, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        lipschitz_bound(model, steps=0)
    with pytest.raises(TypeError, match="steps must be an int"):
        lipschitz_bound(model, steps=1.5)


@pytest.mark.parametrize("cell,proj", JACOBIAN_CASES)
def test_weight_bound_holds_anywhere_in_its_state_domain(cell, proj):
    """Stress the derivation: random states with |h| <= M, |c| <= C and large inputs."""
    rng = np.random.default_rng(9)
    layer = _build(cell, hidden=4, proj=proj, scale=3.0, seed=7)
    spec, size = layer.spec, 4000
    limit = 2.5
    hx = np.full((1, 1, spec.output_size), limit)
    hx = (hx, np.full((1, 1, 4), limit)) if spec.has_cell_state else hx
    entry = lipschitz_bound(layer, hx=hx, steps=1)["weight_hh_l0"]
    assert entry.get("cell_bound", limit) == limit and entry.get("state_bound", limit) == limit
    signs = rng.choice([-1.0, 1.0], (size, spec.output_size))
    h = limit * np.where(rng.random((size, 1)) < 0.5, signs, rng.uniform(-1, 1, signs.shape))
    state = (h, limit * rng.choice([-1.0, 1.0], (size, 4))) if spec.has_cell_state else (h,)
    x = 4.0 * rng.standard_normal((size, 3))
    _, jac = lip._STEPS[spec.kind](spec, _short(layer), x, state)
    assert np.linalg.svd(jac, compute_uv=False)[:, 0].max() <= entry["bound"]
