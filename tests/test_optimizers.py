"""Optimizers on flat buffers: step by step against torch.optim, checkpoints, bad input."""

import io
import json

import numpy as np
import pytest

import fastrnn as fr
from fastrnn.training import optimizers as opt

from ._compare import assert_close
from ._torch_ref import load_torch

STEPS = 20
SIZE = 300
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}

#: (optimizer, keyword arguments), the same for ours and for torch.optim.
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), amsgrad=True)),
    # 1 - beta1 >= 0.5 takes torch.lerp's other form.
    ("Adam", dict(lr=0.02, betas=(0.3, 0.5), eps=1e-6, weight_decay=0.05, amsgrad=True,
                  maximize=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, betas=(0.4, 0.9), maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.001, momentum=0.9)),
    ("RMSprop", dict(lr=0.001, centered=True)),
    ("RMSprop", dict(lr=0.001, centered=True, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.001, alpha=0.3, centered=True, eps=1e-4, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.01)),
    ("Adadelta", dict(lr=2.0, rho=0.95, eps=1e-4, maximize=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, eps=1e-6, maximize=True)),
]


def _ids(case):
    name, kwargs = case
    return name + "".join(f"-{k}={v}" for k, v in kwargs.items())


def _problem(dtype, seed=0):
    """Initial parameters and a fixed sequence of gradients of varied scale."""
    rng = np.random.default_rng(seed)
    params = rng.standard_normal(SIZE).astype(dtype)
    grads = [(rng.standard_normal(SIZE) * rng.uniform(0.1, 3.0)).astype(dtype)
             for _ in range(STEPS)]
    return params, grads


def _ours(name, params, kwargs):
    """Our optimizer over a copy of ``params``, with its own gradient buffer."""
    params = params.copy()
    grads = np.zeros_like(params)
    return getattr(opt, name)((params, grads), **kwargs), params, grads


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_matches_torch_at_every_step(case, dtype):
    torch = load_torch()
    name, kwargs = case
    start, gradients = _problem(dtype)
    ours, params, grads = _ours(name, start, kwargs)
    weight = torch.tensor(start.copy(), requires_grad=True)
    reference = getattr(torch.optim, name)([weight], foreach=False, **kwargs)
    for step, gradient in enumerate(gradients, 1):
        grads[...] = gradient
        ours.step()
        weight.grad = torch.from_numpy(gradient.copy())
        reference.step()
        assert_close(params, weight.detach().numpy(), TOLERANCE[dtype], f"params, step {step}")
        for key, value in reference.state[weight].items():
            if key != "step" and value is not None:
                assert_close(ours.state[key], value.numpy(), TOLERANCE[dtype],
                             f"state {key!r}, step {step}")
    assert ours.step_count == STEPS
    np.testing.assert_array_equal(grads, gradients[-1])  # step() leaves the gradients alone


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad"])
def test_hyperparameters_changed_between_steps_are_used(name):
    torch = load_torch()
    kwargs = dict(lr=0.1, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.1)
    start, gradients = _problem(np.float64, seed=1)
    ours, params, grads = _ours(name, start, kwargs)
    weight = torch.tensor(start.copy(), requires_grad=True)
    reference = getattr(torch.optim, name)([weight], foreach=False, **kwargs)
    for step, gradient in enumerate(gradients, 1):
        lr = 0.1 * 0.8 ** step  # an exponential schedule, set the way each library expects
        ours.lr = lr
        reference.param_groups[0]["lr"] = lr
        grads[...] = gradient
        ours.step()
        weight.grad = torch.from_numpy(gradient.copy())
        reference.step()
    assert_close(params, weight.detach().numpy(), 1e-12, "params after a schedule")


def test_updates_a_layer_in_place_through_its_views():
    layer = fr.Linear(3, 2, dtype=np.float64, seed=0)
    weight = layer.params["weight"]
    before = weight.copy()
    layer.flat_grads[...] = 1.0
    sgd = opt.SGD(layer, lr=0.5)
    sgd.step()
    np.testing.assert_array_equal(weight, before - 0.5)   # the named view saw the update
    np.testing.assert_array_equal(layer.flat_grads, 1.0)
    sgd.zero_grad()
    assert not layer.flat_grads.any()


def test_follows_a_layer_adopted_into_a_sequential():
    layer = fr.Linear(3, 2, dtype=np.float64, seed=0)
    adam = opt.Adam(layer, lr=0.1, eps=0.0)   # a first step of exactly lr * sign(g)
    model = fr.Sequential([layer])   # moves the layer's parameters into the model's buffer
    before = model.flat_params.copy()
    model.flat_grads[...] = 1.0
    adam.step()
    assert_close(model.flat_params, before - 0.1, 1e-12, "params of the adopted layer")


# -- checkpoints ---------------------------------------------------------------------------------

#: One configuration per optimizer that keeps every kind of state it has.
FULL_STATE = [
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("RMSprop", dict(lr=0.001, alpha=0.9, centered=True, momentum=0.9, weight_decay=0.01)),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, initial_accumulator_value=0.2)),
]


def _through_files(state):
    """``state`` written as a checkpoint writer would (arrays to .npz, the rest to JSON) and
    read back."""
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer) as npz:
        loaded = {k: npz[k] for k in npz.files}
    loaded.update(json.loads(json.dumps(scalars)))
    return loaded


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", FULL_STATE, ids=[c[0] for c in FULL_STATE])
def test_state_dict_round_trip_continues_bit_for_bit(case, dtype):
    name, kwargs = case
    start, gradients = _problem(dtype, seed=2)
    whole, whole_params, whole_grads = _ours(name, start, kwargs)
    for gradient in gradients:
        whole_grads[...] = gradient
        whole.step()

    first, params, grads = _ours(name, start, kwargs)
    for gradient in gradients[:7]:
        grads[...] = gradient
        first.step()
    state = first.state_dict()
    assert state["type"] == name and state["step_count"] == 7
    assert all(isinstance(v, (np.ndarray, int, float, bool, str)) for v in state.values())
    saved_params = params.copy()
    del first

    # A fresh optimizer with other hyperparameters takes every one from the state.
    second = getattr(opt, name)((saved_params, grads), lr=0.5)
    second.load_state_dict(_through_files(state))
    assert second.state_dict().keys() == state.keys()
    for gradient in gradients[7:]:
        grads[...] = gradient
        second.step()
    np.testing.assert_array_equal(saved_params, whole_params)
    for key, value in whole.state.items():
        np.testing.assert_array_equal(second.state[key], value)
    assert second.step_count == STEPS


def test_state_dict_holds_copies():
    sgd, params, grads = _ours("SGD", np.ones(4), dict(lr=0.1, momentum=0.9))
    grads[...] = 1.0
    sgd.step()
    state = sgd.state_dict()
    state["momentum_buffer"][...] = 99.0
    assert not (sgd.state["momentum_buffer"] == 99.0).any()
    sgd.load_state_dict(state)
    state["momentum_buffer"][...] = 7.0
    np.testing.assert_array_equal(sgd.state["momentum_buffer"], 99.0)


def test_sgd_state_without_a_buffer_restarts_momentum_from_the_gradient():
    sgd, params, grads = _ours("SGD", np.zeros(3), dict(lr=1.0))
    state = sgd.state_dict()
    assert "momentum_buffer" not in state
    sgd.momentum = 0.5  # switched on later: the first step with momentum starts the buffer
    grads[...] = 2.0
    sgd.step()
    np.testing.assert_array_equal(params, -2.0)
    sgd.load_state_dict(state)   # no buffer in the state: the next step starts one again
    assert sgd.momentum == 0.0 and "momentum_buffer" not in sgd.state


def test_state_dict_scalars_are_plain_python_values():
    adam = opt.Adam((np.zeros(3), np.zeros(3)))
    adam.lr, adam.betas, adam.amsgrad = np.float32(0.5), [np.float64(0.5), 0.25], np.bool_(True)
    state = adam.state_dict()
    assert type(state["lr"]) is float and state["lr"] == 0.5
    assert (state["beta1"], state["beta2"]) == (0.5, 0.25) and state["amsgrad"] is True
    json.dumps({k: v for k, v in state.items() if not isinstance(v, np.ndarray)})


def test_repr_names_the_hyperparameters():
    text = repr(opt.Adam((np.zeros(2), np.zeros(2))))
    assert text.startswith("Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08")


# -- bad input ----------------------------------------------------------------------------------

def _pair(size=4, dtype=np.float64):
    return np.zeros(size, dtype), np.zeros(size, dtype)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad"])
def test_every_optimizer_rejects_a_negative_lr_and_a_model_without_buffers(name):
    with pytest.raises(ValueError, match=r"lr must be a real number >= 0, got -0\.1"):
        getattr(opt, name)(_pair(), lr=-0.1)
    with pytest.raises(TypeError, match="lr must be a real number, got str"):
        getattr(opt, name)(_pair(), lr="0.1")
    with pytest.raises(TypeError, match="model must have flat_params and flat_grads"):
        getattr(opt, name)(object(), lr=0.1)


@pytest.mark.parametrize("cls, kwargs, error, message", [
    (opt.SGD, dict(lr=0.1, momentum=-0.5), ValueError, r"momentum must be a real number >= 0"),
    (opt.SGD, dict(lr=0.1, weight_decay=-1), ValueError, r"weight_decay must be .* >= 0, got -1"),
    (opt.SGD, dict(lr=0.1, dampening=float("nan")), ValueError,
     r"dampening must be a real number \(not NaN\), got nan"),
    (opt.SGD, dict(lr=0.1, nesterov=True), ValueError,
     r"nesterov=True requires momentum > 0 and dampening == 0, got momentum=0\.0"),
    (opt.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"nesterov=True requires .* dampening=0\.1"),
    (opt.SGD, dict(lr=0.1, nesterov=1), TypeError, r"nesterov must be True or False, got int"),
    (opt.SGD, dict(lr=0.1, maximize="yes"), TypeError, r"maximize must be True or False"),
    (opt.Adam, dict(betas=(1.0, 0.9)), ValueError,
     r"betas\[0\] must be a real number in \[0, 1\), got 1\.0"),
    (opt.Adam, dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\] must be .* in \[0, 1\)"),
    (opt.Adam, dict(betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\)"),
    (opt.Adam, dict(betas=(0.9, 0.99, 0.999)), TypeError, r"betas must be a pair"),
    (opt.Adam, dict(eps=-1e-8), ValueError, r"eps must be a real number >= 0, got -1e-08"),
    (opt.Adam, dict(amsgrad=None), TypeError, r"amsgrad must be True or False, got NoneType"),
    (opt.AdamW, dict(weight_decay=-0.01), ValueError, r"weight_decay must be .* >= 0"),
    (opt.AdamW, dict(eps=-1.0), ValueError, r"eps must be .* >= 0"),
    (opt.RMSprop, dict(alpha=-0.5), ValueError, r"alpha must be a real number >= 0"),
    (opt.RMSprop, dict(momentum=-0.9), ValueError, r"momentum must be .* >= 0"),
    (opt.RMSprop, dict(eps=-1.0), ValueError, r"eps must be .* >= 0"),
    (opt.RMSprop, dict(centered=0), TypeError, r"centered must be True or False"),
    (opt.Adadelta, dict(rho=1.5), ValueError, r"rho must be a real number in \[0, 1\], got 1\.5"),
    (opt.Adadelta, dict(eps=-1e-6), ValueError, r"eps must be .* >= 0"),
    (opt.Adadelta, dict(weight_decay=True), TypeError, r"weight_decay must be a real number, "
                                                       r"got bool"),
    (opt.Adagrad, dict(lr_decay=-0.1), ValueError, r"lr_decay must be a real number >= 0"),
    (opt.Adagrad, dict(initial_accumulator_value=-1), ValueError,
     r"initial_accumulator_value must be .* >= 0"),
    (opt.Adagrad, dict(eps=-1e-10), ValueError, r"eps must be .* >= 0"),
])
def test_bad_hyperparameters_are_named(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(_pair(), **kwargs)


def test_a_bad_hyperparameter_set_between_steps_is_caught_at_the_step():
    params, grads = _pair()
    adam = opt.Adam((params, grads))
    adam.betas = (0.9, 1.0)
    with pytest.raises(ValueError, match=r"betas\[1\] must be a real number in \[0, 1\)"):
        adam.step()
    assert adam.step_count == 0 and not params.any()


class _Model:
    def __init__(self, params, grads):
        self.flat_params, self.flat_grads = params, grads


@pytest.mark.parametrize("model, error, message", [
    ((np.zeros(3),), TypeError, r"a \(params, grads\) pair of 1-D arrays, got a tuple of length 1"),
    ((np.zeros(3), [0.0, 0.0, 0.0]), TypeError,
     r"model\[1\] \(grads\) must be a numpy array, got list"),
    (_Model(np.zeros(3, np.int64), np.zeros(3)), TypeError,
     r"model\.flat_params must have dtype float32 or float64, got int64"),
    ((np.zeros((2, 3)), np.zeros((2, 3))), ValueError,
     r"model\[0\] \(params\) must be 1-D, got shape \(2, 3\)"),
    ((np.zeros(6)[::2], np.zeros(3)), ValueError,
     r"model\[0\] \(params\) must be contiguous \(one flat buffer\)"),
    ((np.zeros(3), np.zeros(3, np.float32)), TypeError,
     r"model\[1\] \(grads\) must have the dtype of model\[0\] \(params\), float64, got float32"),
    (_Model(np.zeros(3), np.zeros(4)), ValueError,
     r"model\.flat_grads must have the size of model\.flat_params, 3, got 4"),
])
def test_bad_buffers_are_named(model, error, message):
    with pytest.raises(error, match=message):
        opt.SGD(model, lr=0.1)


def test_shared_and_read_only_buffers_are_refused():
    shared = np.zeros(3)
    with pytest.raises(ValueError, match=r"model\[0\] \(params\) and model\[1\] \(grads\) "
                                         r"must be separate buffers"):
        opt.SGD((shared, shared), lr=0.1)
    readonly = np.zeros(3)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match=r"model\[0\] \(params\) must be writable"):
        opt.SGD((readonly, np.zeros(3)), lr=0.1)


def test_buffers_that_change_under_the_optimizer_are_refused():
    model = _Model(*_pair(4))
    sgd = opt.SGD(model, lr=0.1)
    model.flat_params, model.flat_grads = _pair(5)
    with pytest.raises(ValueError, match=r"holds state for 4 parameters of float64, the model "
                                         r"now has 5 of float64"):
        sgd.step()
    with pytest.raises(ValueError, match="buffers changed"):
        sgd.zero_grad()


def test_load_state_dict_refuses_bad_states():
    adam = opt.Adam(_pair(4), amsgrad=True)
    adam.step()
    good = adam.state_dict()

    def load(**changes):
        state = dict(good)
        for key, value in changes.items():
            if value is None:
                del state[key]
            else:
                state[key] = value
        adam.load_state_dict(state)

    with pytest.raises(TypeError, match="state must be a dict"):
        adam.load_state_dict([("type", "Adam")])
    with pytest.raises(ValueError, match=r"an optimizer of type 'Adam', got one of type 'SGD'"):
        adam.load_state_dict(opt.SGD(_pair(4), lr=0.1).state_dict())
    with pytest.raises(ValueError, match=r"of type 'AdamW', got one of type 'Adam'"):
        opt.AdamW(_pair(4)).load_state_dict(good)
    with pytest.raises(ValueError, match=r"state lacks the keys \['exp_avg_sq'\]"):
        load(exp_avg_sq=None)
    with pytest.raises(ValueError, match=r"state lacks the keys \['beta1'\]"):
        load(beta1=None)
    with pytest.raises(ValueError, match=r"state has unknown keys \['momentum'\]"):
        load(momentum=0.9)
    with pytest.raises(TypeError, match=r"state\['dtype'\] must be 'float64'"):
        load(dtype="float32")
    with pytest.raises(ValueError, match=r"state\['size'\] must be 4 \(the number of parameters"):
        load(size=5)
    with pytest.raises(ValueError, match=r"state\['step_count'\] must be an int >= 0, got -1"):
        load(step_count=-1)
    with pytest.raises(ValueError, match=r"state\['exp_avg'\] must have shape \(4,\), got \(5,\)"):
        load(exp_avg=np.zeros(5))
    with pytest.raises(TypeError, match=r"state\['exp_avg'\] must have dtype float64, got float32"):
        load(exp_avg=np.zeros(4, np.float32))
    with pytest.raises(TypeError, match=r"state\['exp_avg'\] must be a numpy array, got list"):
        load(exp_avg=[0.0] * 4)
    with pytest.raises(ValueError, match=r"bad hyperparameter: betas\[1\] must be .* got 1\.0"):
        load(beta2=1.0)
    # A refused state changes nothing.
    assert adam.betas == (0.9, 0.999) and adam.step_count == 1
    after = adam.state_dict()
    for key, value in good.items():
        np.testing.assert_array_equal(after[key], value)
