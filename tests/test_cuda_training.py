"""Device-resident parameters, GPU arrays in and out, and training on the device.

In numba's CUDA simulator (see ``test_cuda.py``), on tiny shapes: a CUDA layer
and a CPU layer built from one seed are trained side by side (forward,
backward, clipping, optimizer step, three times) and must hold the same
parameters after every step.
"""

import sys

import numpy as np
import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install "
                                         "'fastrnn[cuda]')")

import fastrnn as fr  # noqa: E402
from fastrnn import device  # noqa: E402

if not device.cuda_status()[0]:
    pytest.skip(f"device='cuda' is not usable: {device.cuda_status()[1]}",
                allow_module_level=True)

from numba import cuda  # noqa: E402

from fastrnn.kernels.cuda import _gemm, _jit  # noqa: E402
from fastrnn.kernels.cuda import clip as device_clip  # noqa: E402

from ._compare import assert_close  # noqa: E402

STEPS, BATCH, FEATURES, HIDDEN = 3, 2, 3, 4
TOL64 = 1e-10


@pytest.fixture(autouse=True, scope="module")
def small_launches():
    """As in ``test_cuda.py``: several blocks per launch, a short GIL switch interval."""
    saved = _jit.BLOCK, _gemm.TILE, sys.getswitchinterval()
    _jit.BLOCK, _gemm.TILE = 8, 4
    if device.cuda_simulated():
        sys.setswitchinterval(5e-5)
    yield
    _jit.BLOCK, _gemm.TILE = saved[:2]
    sys.setswitchinterval(saved[2])


def _pair(cls, *args, **options):
    return (cls(*args, dtype=np.float64, seed=3, device="cpu", **options),
            cls(*args, dtype=np.float64, seed=3, device="cuda", **options))


def _data(seed=0, width=HIDDEN):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((STEPS, BATCH, FEATURES)), rng.standard_normal((STEPS, BATCH,
                                                                               width))


# ------------------------------------------------------------ device-resident parameters
def test_cuda_layers_keep_parameters_and_gradients_on_the_device():
    cpu, gpu = _pair(fr.GRU, FEATURES, HIDDEN)
    assert isinstance(cpu.flat_params, np.ndarray) and isinstance(cpu.flat_grads, np.ndarray)
    for value in (gpu.flat_params, gpu.flat_grads, gpu.params["weight_hh_l0"],
                  gpu.grads["bias_ih_l0"]):
        assert device.is_device_array(value) and not isinstance(value, np.ndarray)
    assert np.array_equal(fr.to_numpy(gpu.flat_params), cpu.flat_params)
    # the named parameters are views of the flat buffer, on the device too
    gpu.params["bias_hh_l0"].copy_to_device(np.full(3 * HIDDEN, 2.0))
    offset = gpu.flat_params.size - 3 * HIDDEN
    assert (fr.to_numpy(gpu.flat_params)[offset:] == 2.0).all()
    x, dy = _data()
    _, _, tape = gpu.forward(x)
    gpu.backward(tape, dy)
    assert np.abs(fr.to_numpy(gpu.flat_grads)).sum() > 0
    gpu.zero_grad()
    assert not fr.to_numpy(gpu.flat_grads).any()


def test_state_dict_round_trips_between_devices():
    cpu, gpu = _pair(fr.LSTM, FEATURES, HIDDEN, proj_size=2)
    state = gpu.state_dict()
    assert all(isinstance(value, np.ndarray) for value in state.values())
    state["weight_hh_l0"][...] = 0   # a copy: the layer keeps its values
    assert fr.to_numpy(gpu.params["weight_hh_l0"]).any()
    other = fr.LSTM(FEATURES, HIDDEN, proj_size=2, dtype=np.float64, seed=9, device="cuda")
    other.load_state_dict(cpu.state_dict())                       # host -> device
    assert np.array_equal(fr.to_numpy(other.flat_params), cpu.flat_params)
    device_state = {name: cuda.to_device(value * 2) for name, value in cpu.state_dict().items()}
    other.load_state_dict(device_state)                           # device -> device
    assert np.array_equal(fr.to_numpy(other.flat_params), 2 * cpu.flat_params)
    back = fr.LSTM(FEATURES, HIDDEN, proj_size=2, dtype=np.float64, seed=9, device="cpu")
    back.load_state_dict(device_state)                            # device -> host layer
    assert np.array_equal(back.flat_params, 2 * cpu.flat_params)
    back.load_state_dict(other.state_dict())                      # device layer -> host layer
    assert np.array_equal(back.flat_params, 2 * cpu.flat_params)
    float32 = {name: cuda.to_device(value.astype(np.float32))
               for name, value in cpu.state_dict().items()}
    other.load_state_dict(float32)                                # converted, as from NumPy
    assert np.array_equal(fr.to_numpy(other.flat_params),
                          cpu.flat_params.astype(np.float32).astype(np.float64))


def test_load_state_dict_checks_gpu_arrays():
    _, gpu = _pair(fr.RNN, FEATURES, HIDDEN)
    state = {name: cuda.to_device(value) for name, value in gpu.state_dict().items()}
    state["weight_ih_l0"] = cuda.to_device(np.zeros((HIDDEN, FEATURES + 1)))
    before = fr.to_numpy(gpu.flat_params).copy()
    with pytest.raises(ValueError, match=r"state_dict\['weight_ih_l0'\] must have shape "
                                         r"\(4, 3\), got \(4, 4\)"):
        gpu.load_state_dict(state)
    state["weight_ih_l0"] = cuda.to_device(np.zeros((HIDDEN, FEATURES), np.complex128))
    with pytest.raises(TypeError, match=r"state_dict\['weight_ih_l0'\] must be a real numeric "
                                        r"array, got dtype complex128"):
        gpu.load_state_dict(state)
    assert np.array_equal(fr.to_numpy(gpu.flat_params), before)   # nothing written


# ------------------------------------------------------------ Sequential of CUDA layers
def _sequential_pair(*builders):
    """The same Sequential on both devices: ``builders`` take ``device`` and return a layer."""
    return tuple(fr.Sequential([build(where) for build in builders]) for where in ("cpu", "cuda"))


def _lstm_linear():
    return _sequential_pair(
        lambda where: fr.LSTM(FEATURES, HIDDEN, dtype=np.float64, seed=3, device=where),
        lambda where: fr.Linear(HIDDEN, 2, dtype=np.float64, seed=4, device=where))


def test_a_cuda_sequential_keeps_one_device_buffer_with_layer_views():
    cpu, gpu = _lstm_linear()
    assert gpu.device == "cuda" and cpu.device == "cpu"
    assert _is_gpu(gpu.flat_params) and _is_gpu(gpu.flat_grads)
    assert np.array_equal(fr.to_numpy(gpu.flat_params), cpu.flat_params)
    linear = gpu.layers[1]
    linear.params["bias"].copy_to_device(np.array([5.0, 6.0]))   # a view of the flat buffer
    assert np.array_equal(fr.to_numpy(gpu.flat_params)[-2:], [5.0, 6.0])
    assert np.array_equal(fr.to_numpy(gpu.params["1.bias"]), [5.0, 6.0])


@pytest.mark.parametrize("gpu_input", [False, True])
def test_a_cuda_sequential_trains_like_the_cpu(gpu_input):
    """LSTM + Linear: forward, backward, clip_grad_norm and an SGD step, three times."""
    cpu, gpu = _lstm_linear()
    x, dy = _data(width=2)
    move = cuda.to_device if gpu_input else (lambda a: a)
    for step in range(3):
        results = []
        for model, convert in ((cpu, lambda a: a), (gpu, move)):
            optimizer = fr.training.SGD(model, lr=0.1, momentum=0.9)
            model.zero_grad()
            y, states, tape = model.forward(convert(x))
            dx, dhx = model.backward(tape, convert(dy))
            norm = fr.training.clip_grad_norm(model, 0.5)
            optimizer.step()
            results.append((y, states[0], dx, dhx[0], norm, fr.to_numpy(model.flat_params)))
        (y, state, dx, dhx, norm, params), (y_d, state_d, dx_d, dhx_d, norm_d, params_d) = results
        assert _is_gpu(y_d) == gpu_input and _is_gpu(dx_d) == gpu_input
        assert _is_gpu(state_d[0]) == gpu_input and _is_gpu(dhx_d[1]) == gpu_input
        for name, actual, wanted in [("y", y_d, y), ("dx", dx_d, dx), ("h_n", state_d[0], state[0]),
                                     ("c_n", state_d[1], state[1]), ("dh0", dhx_d[0], dhx[0]),
                                     ("dc0", dhx_d[1], dhx[1]), ("parameters", params_d, params)]:
            assert_close(fr.to_numpy(actual), wanted, TOL64, f"{name} at step {step}")
        assert abs(norm_d - norm) <= TOL64 * norm and norm > 0.5, "the test must clip"


def _charlm_like(where):
    return [fr.Embedding(5, FEATURES, dtype=np.float64, seed=1, device=where),
            fr.GRU(FEATURES, HIDDEN, dtype=np.float64, seed=2, device=where),
            fr.Dropout(0.4, seed=5),
            fr.Linear(HIDDEN, 5, dtype=np.float64, seed=3, device=where)]


@pytest.mark.parametrize("gpu_input", [False, True])
def test_a_cuda_sequential_with_embedding_and_dropout_matches_the_cpu(gpu_input):
    cpu, gpu = (fr.Sequential(_charlm_like(where)) for where in ("cpu", "cuda"))
    tokens = np.array([[0, 4], [4, 4], [2, 0]])   # repeated ids: the scatter sums runs
    dy = np.random.default_rng(3).standard_normal((STEPS, BATCH, 5))
    y, states, tape = cpu.forward(tokens)
    dx, dhx = cpu.backward(tape, dy)
    move = cuda.to_device if gpu_input else (lambda a: a)
    y_d, states_d, tape_d = gpu.forward(move(tokens))
    dx_d, dhx_d = gpu.backward(tape_d, move(dy))
    assert dx is None and dx_d is None and _is_gpu(y_d) == gpu_input
    assert_close(fr.to_numpy(y_d), y, TOL64, "y")
    assert_close(fr.to_numpy(states_d[0]), states[0], TOL64, "h_n")
    assert_close(fr.to_numpy(dhx_d[0]), dhx[0], TOL64, "dhx")
    assert_close(fr.to_numpy(gpu.flat_grads), cpu.flat_grads, TOL64, "gradients")
    inference, _ = gpu(move(tokens))
    assert_close(fr.to_numpy(inference), cpu(tokens)[0], TOL64, "inference")


def test_cuda_embedding_gathers_and_scatters_like_the_cpu():
    cpu, gpu = _pair(fr.Embedding, 6, 3)
    ids = np.array([[5, 1, 5], [1, 5, 0]])
    dy = np.random.default_rng(2).standard_normal((2, 3, 3))
    for layer, move in ((cpu, lambda a: a), (gpu, cuda.to_device)):
        rows, tape = layer.forward(move(ids))
        layer.backward(tape, move(dy))
        assert np.array_equal(fr.to_numpy(rows), cpu.params["weight"][ids])
    assert _is_gpu(rows)
    # summed in index order, as numpy.add.at: the same bits
    assert np.array_equal(fr.to_numpy(gpu.flat_grads), cpu.flat_grads)
    assert isinstance(gpu(ids), np.ndarray)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 6\), got values from 1 to 6"):
        gpu(cuda.to_device(ids + 1))
    with pytest.raises(TypeError, match=r"indices must be a numpy array, got a GPU array "
                                        r"\(\w+\) of shape \(2, 3\); this runs on the host"):
        cpu(cuda.to_device(ids))


def test_embedding_scatter_plan_groups_each_row_in_token_order():
    from fastrnn.kernels.cuda import embedding
    rows, starts, order = embedding.runs(np.array([3, 1, 3, 0, 1, 3]))
    assert rows.tolist() == [0, 1, 3] and starts.tolist() == [0, 1, 3, 6]
    assert order.tolist() == [3, 1, 4, 0, 2, 5]


def test_a_sequential_refuses_layers_on_two_devices():
    with pytest.raises(ValueError, match=r"layers must all be on one device: expected "
                                         r"device='cuda' \(that of layers\[0\], GRU\), got "
                                         r"layers\[2\] \(Linear\) on 'cpu'; build every layer "
                                         r"with the same device="):
        fr.Sequential([fr.GRU(3, 4, device="cuda"), fr.Dropout(0.1), fr.Linear(4, 2)])
    with pytest.raises(ValueError, match=r"expected device='cpu' \(that of layers\[0\], "
                                         r"Embedding\), got layers\[1\] \(LSTM\) on 'cuda'"):
        fr.Sequential([fr.Embedding(3, 2), fr.LSTM(2, 2, device="cuda")])


def test_a_cuda_sequential_checks_host_input_before_uploading_it():
    _, gpu = _lstm_linear()
    with pytest.raises(TypeError, match=r"x must have dtype float64 \(the layer's dtype\), got "
                                        r"floating dtype float32"):
        gpu.forward(np.zeros((STEPS, BATCH, FEATURES), np.float32))
    _, _, tape = gpu.forward(np.zeros((STEPS, BATCH, FEATURES)))
    with pytest.raises(TypeError, match=r"dy must have dtype float64 \(the layer's dtype\), got "
                                        r"non-floating dtype int64"):
        gpu.backward(tape, np.zeros((STEPS, BATCH, 2), np.int64))


def test_a_cuda_sequential_state_dict_round_trips(tmp_path):
    cpu, gpu = (fr.Sequential(_charlm_like(where)) for where in ("cpu", "cuda"))
    state = gpu.state_dict()
    assert all(isinstance(value, np.ndarray) for value in state.values())
    assert set(state) == set(cpu.state_dict())
    doubled = {name: 2 * value for name, value in state.items()}
    gpu.load_state_dict(doubled)                                       # host -> device
    assert np.array_equal(fr.to_numpy(gpu.flat_params), 2 * cpu.flat_params)
    cpu.load_state_dict(gpu.state_dict())                              # device -> host
    assert np.array_equal(cpu.flat_params, fr.to_numpy(gpu.flat_params))
    gpu.load_state_dict({name: cuda.to_device(value / 2) for name, value in doubled.items()})
    assert np.array_equal(fr.to_numpy(gpu.flat_params), cpu.flat_params / 2)
    start = gpu.layers[0].flat_params.size   # the GRU's views follow the loaded values
    assert np.array_equal(fr.to_numpy(gpu.layers[1].flat_params),
                          fr.to_numpy(gpu.flat_params)[start:start + gpu.layers[1].flat_params.size])
    path = tmp_path / "model.npz"
    fr.save(path, gpu)
    again = fr.load(path, device="cuda")
    assert again.device == "cuda" and _is_gpu(again.flat_params)
    assert np.array_equal(fr.to_numpy(again.flat_params), fr.to_numpy(gpu.flat_params))


def test_truncated_bptt_and_adam_train_a_cuda_sequential_like_a_cpu_one():
    cpu, gpu = _lstm_linear()
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, BATCH, FEATURES))
    targets = rng.standard_normal((5, BATCH, 2))
    results = []
    for model in (cpu, gpu):
        adam = fr.training.Adam(model, lr=0.05)
        engine = fr.training.TruncatedBPTT(model, fr.losses.mse, k1=2, k2=3)

        def step(index, loss, model=model, adam=adam):
            fr.training.clip_grad_value(model, 0.1)
            adam.step()
        states, loss = engine.run(x, targets, on_window=step)
        results.append((fr.to_numpy(model.flat_params), loss, states[0][0]))
    (params, loss, h), (params_d, loss_d, h_d) = results
    assert isinstance(h_d, np.ndarray)
    assert abs(loss_d - loss) <= TOL64 * loss
    assert_close(params_d, params, TOL64, "parameters after TBPTT")
    assert_close(h_d, h, TOL64, "final state")


def test_save_and_load_a_cuda_model(tmp_path):
    _, gpu = _pair(fr.GRU, FEATURES, HIDDEN)
    path = tmp_path / "model.npz"
    fr.save(path, gpu)
    again = fr.load(path, device="cpu")
    assert np.array_equal(again.flat_params, fr.to_numpy(gpu.flat_params))


# ------------------------------------------------------------ GPU arrays in and out
def _is_gpu(value):
    return device.is_device_array(value) and not isinstance(value, np.ndarray)


@pytest.mark.parametrize("cls, options", [(fr.GRU, dict(bidirectional=True)),
                                          (fr.LSTM, dict(batch_first=True, num_layers=2,
                                                         dropout=0.5))])
def test_gpu_arrays_in_give_gpu_arrays_out(cls, options):
    host, gpu = (cls(FEATURES, HIDDEN, dtype=np.float64, seed=4, device="cuda", **options)
                 for _ in range(2))
    rng = np.random.default_rng(1)
    batch_first = options.get("batch_first", False)
    x = rng.standard_normal((BATCH, STEPS, FEATURES) if batch_first else
                            (STEPS, BATCH, FEATURES))
    shapes = host._state_shapes(BATCH)
    hx = [rng.standard_normal(shape) for shape in shapes]
    hx = tuple(hx) if cls is fr.LSTM else hx[0]
    results = []
    for layer, move in ((host, lambda a: a), (gpu, cuda.to_device)):
        y, h_n, tape = layer.forward(move(x), hx)   # hx from the host in both
        dy = np.ones(tuple(y.shape))
        dx, dhx = layer.backward(tape, move(dy))
        results.append((y, h_n, dx, dhx, fr.to_numpy(layer.flat_grads)))
    (y, h_n, dx, dhx, grads), (y_d, h_d, dx_d, dhx_d, grads_d) = results
    for value in (y, dx) + (h_n if isinstance(h_n, tuple) else (h_n,)):
        assert isinstance(value, np.ndarray)
    for value in (y_d, dx_d) + (h_d if isinstance(h_d, tuple) else (h_d,)):
        assert _is_gpu(value)
    assert np.array_equal(fr.to_numpy(y_d), y)
    assert np.array_equal(fr.to_numpy(dx_d), dx)
    assert np.array_equal(grads_d, grads)
    for a, b in zip(*(v if isinstance(v, tuple) else (v,) for v in (h_d, h_n))):
        assert np.array_equal(fr.to_numpy(a), b)


def test_unbatched_gpu_input_and_cells_and_linear_keep_gpu_arrays():
    layer = fr.RNN(FEATURES, HIDDEN, dtype=np.float64, seed=1, device="cuda")
    x = np.random.default_rng(2).standard_normal((STEPS, FEATURES))
    y, h_n = layer(cuda.to_device(x))
    assert _is_gpu(y) and tuple(y.shape) == (STEPS, HIDDEN) and tuple(h_n.shape) == (1, HIDDEN)
    assert_close(fr.to_numpy(y), layer(x)[0], 0, "y")
    cell = fr.LSTMCell(FEATURES, HIDDEN, dtype=np.float64, seed=1, device="cuda")
    (h, c), tape = cell.forward(cuda.to_device(x[:BATCH]))
    assert _is_gpu(h) and _is_gpu(c)
    dx, _ = cell.backward(tape, (cuda.to_device(np.ones((BATCH, HIDDEN))), None))
    assert _is_gpu(dx)
    (h_host, _), tape = cell.forward(x[:BATCH])
    assert isinstance(h_host, np.ndarray) and np.array_equal(h_host, fr.to_numpy(h))
    linear = fr.Linear(FEATURES, 2, dtype=np.float64, seed=1, device="cuda")
    y, tape = linear.forward(cuda.to_device(x))
    assert _is_gpu(y) and _is_gpu(linear.backward(tape, cuda.to_device(np.ones((STEPS, 2)))))
    assert np.array_equal(fr.to_numpy(y), linear(x))


def test_to_numpy():
    host = np.arange(3.0)
    assert fr.to_numpy(host) is host
    copied = fr.to_numpy(cuda.to_device(host))
    assert isinstance(copied, np.ndarray) and np.array_equal(copied, host)
    with pytest.raises(TypeError, match=r"array must be a numpy array or a GPU array \(with "
                                        r"__cuda_array_interface__\), got list"):
        fr.to_numpy([1.0, 2.0])


def test_gpu_array_errors_name_the_argument():
    cpu = fr.GRU(FEATURES, HIDDEN, dtype=np.float64, device="cpu")
    x = cuda.to_device(np.zeros((STEPS, BATCH, FEATURES)))
    with pytest.raises(TypeError, match=r"x must be a numpy array of float64, got a GPU array "
                                        r"\((FakeCUDAArray|DeviceNDArray)\) of shape \(3, 2, 3\); "
                                        r"this runs on the host \(device='cpu'\)"):
        cpu(x)
    with pytest.raises(TypeError, match=r"x must be a numpy array of token ids, got a GPU "
                                        r"array"):
        cpu(cuda.to_device(np.zeros((STEPS, BATCH), np.int64)))
    with pytest.raises(TypeError, match=r"x must be a numpy array of float64, got a GPU array"):
        fr.Linear(FEATURES, 2, dtype=np.float64, device="cpu")(x)
    gpu = fr.GRU(FEATURES, HIDDEN, dtype=np.float64, device="cuda")
    with pytest.raises(TypeError, match=r"x must have dtype float64 \(the layer's dtype\), got a "
                                        r"GPU array of dtype float32"):
        gpu(cuda.to_device(np.zeros((STEPS, BATCH, FEATURES), np.float32)))
    with pytest.raises(ValueError, match=r"hx must be C-contiguous when it is a GPU array"):
        gpu(x, cuda.to_device(np.zeros((1, BATCH, 2 * HIDDEN)))[:, :, ::2])
    with pytest.raises(ValueError, match=r"hx must have shape \(1, 2, 4\), got \(1, 2, 5\)"):
        gpu(x, cuda.to_device(np.zeros((1, BATCH, HIDDEN + 1))))


def test_gpu_token_ids_are_range_checked():
    gpu = fr.GRU(FEATURES, HIDDEN, dtype=np.float64, seed=1, device="cuda")
    ids = np.array([[0, 2], [1, 1], [2, 0]])
    y, _ = gpu(cuda.to_device(ids))
    assert _is_gpu(y) and np.array_equal(fr.to_numpy(y), gpu(ids)[0])
    with pytest.raises(ValueError, match=r"x holds token ids, which must lie in \[0, "
                                         r"input_size=3\), got values from 1 to 3"):
        gpu(cuda.to_device(ids + 1))


# ------------------------------------------------------------ training on the device
def _train(layer, make_optimizer, x, dy, clip_norm, clip_value, steps=3):
    """Three rounds of forward, backward, clipping and an optimizer step; the parameters
    and the total norms after each."""
    optimizer = make_optimizer(layer)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        _, _, tape = layer.forward(x)
        layer.backward(tape, dy)
        norm = fr.training.clip_grad_norm(layer, clip_norm)
        if clip_value:
            fr.training.clip_grad_value(layer, clip_value)
        optimizer.step()
        history.append((fr.to_numpy(layer.flat_params).copy(), norm))
    return history, optimizer


TRAINING = {
    "lstm-sgd-nesterov": (fr.LSTM, dict(peephole=True), lambda m: fr.training.SGD(
        m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), 0.5, None),
    "gru-adam-amsgrad": (fr.GRU, dict(reset_after=False), lambda m: fr.training.Adam(
        m, lr=0.05, weight_decay=0.1, amsgrad=True), 1.0, 0.05),
    "rnn-adamw-maximize": (fr.RNN, {}, lambda m: fr.training.AdamW(
        m, lr=0.05, maximize=True), 100.0, None),
    "lstm-sgd-dampening": (fr.LSTM, dict(proj_size=2), lambda m: fr.training.SGD(
        m, lr=0.1, momentum=0.5, dampening=0.3), 0.3, 0.02),
    "rnn-rmsprop-centered": (fr.RNN, {}, lambda m: fr.training.RMSprop(
        m, lr=0.01, momentum=0.5, centered=True), 0.5, None),
}


@pytest.mark.parametrize("case", TRAINING)
def test_training_on_the_device_matches_the_cpu(case):
    cls, options, make_optimizer, clip_norm, clip_value = TRAINING[case]
    cpu, gpu = _pair(cls, FEATURES, HIDDEN, **options)
    x, dy = _data(width=cpu.spec.output_size)
    initial = cpu.flat_params.copy()
    expected, _ = _train(cpu, make_optimizer, x, dy, clip_norm, clip_value)
    actual, optimizer = _train(gpu, make_optimizer, cuda.to_device(x), cuda.to_device(dy),
                               clip_norm, clip_value)
    assert all(_is_gpu(array) for array in optimizer.state.values())
    for step, ((params, norm), (params_d, norm_d)) in enumerate(zip(expected, actual)):
        assert abs(norm_d - norm) <= TOL64 * norm, f"norm at step {step}"
        assert_close(params_d, params, TOL64, f"parameters after step {step}")
    assert not np.allclose(expected[-1][0], initial)   # training moved the parameters
    if clip_norm < 10:
        assert expected[0][1] > clip_norm, "the test must clip"


def test_linear_trains_on_the_device_like_the_cpu():
    cpu, gpu = _pair(fr.Linear, FEATURES, 2)
    x, dy = np.ones((4, FEATURES)), np.linspace(-1, 1, 8).reshape(4, 2)
    results = []
    for layer in (cpu, gpu):
        optimizer = fr.training.Adam(layer, lr=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            _, tape = layer.forward(x)
            layer.backward(tape, dy)
            optimizer.step()
        results.append(fr.to_numpy(layer.flat_params))
    assert_close(results[1], results[0], TOL64, "parameters")


def test_optimizer_state_dict_round_trip_on_the_device():
    _, gpu = _pair(fr.RNN, FEATURES, HIDDEN)
    x, dy = _data()
    gpu.zero_grad()
    _, _, tape = gpu.forward(x)
    gpu.backward(tape, dy)
    first = fr.training.Adam(gpu, lr=0.01)
    first.step()
    state = first.state_dict()
    assert isinstance(state["exp_avg"], np.ndarray) and state["exp_avg"].any()
    saved = fr.to_numpy(gpu.flat_params)
    first.step()
    after_first = fr.to_numpy(gpu.flat_params)
    gpu.flat_params.copy_to_device(saved)   # back to before that step; resume from the state
    second = fr.training.Adam(gpu, lr=0.01)
    second.load_state_dict(state)
    assert _is_gpu(second.state["exp_avg"])
    second.step()
    assert np.array_equal(fr.to_numpy(gpu.flat_params), after_first)


#: Every option of the optimizers whose GPU steps are not exercised by ``TRAINING``.
OPTIMIZER_OPTIONS = [
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True, momentum=0.9, weight_decay=0.1,
                     eps=1e-4, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1)),
    ("Adadelta", dict(lr=2.0, rho=0.95, eps=1e-4, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, eps=1e-6, maximize=True)),
]


@pytest.mark.parametrize("name, options", OPTIMIZER_OPTIONS,
                         ids=[f"{name}-{'-'.join(options) or 'default'}"
                              for name, options in OPTIMIZER_OPTIONS])
def test_every_optimizer_steps_on_the_device_like_the_cpu(name, options):
    """Four steps from the same buffers, new gradients each step (19 entries: 3 blocks)."""
    rng = np.random.default_rng(6)
    params = rng.standard_normal(19)
    host = (params.copy(), np.zeros(19))
    gpu = (cuda.to_device(params), cuda.to_device(np.zeros(19)))
    cls = getattr(fr.training, name)
    optimizers = cls(host, **options), cls(gpu, **options)
    for step in range(4):
        grads = rng.standard_normal(19)
        host[1][...] = grads
        gpu[1].copy_to_device(grads)
        for optimizer in optimizers:
            optimizer.step()
        assert_close(fr.to_numpy(gpu[0]), host[0], TOL64, f"{name} parameters, step {step}")
        for key, value in optimizers[0].state.items():
            assert _is_gpu(optimizers[1].state[key])
            assert_close(fr.to_numpy(optimizers[1].state[key]), value, TOL64,
                         f"{name} state {key!r}, step {step}")
    assert not np.allclose(host[0], params)   # the steps moved the parameters


def test_optimizers_and_clipping_refuse_mixed_buffers():
    params, grads = cuda.to_device(np.zeros(4)), np.zeros(4)
    with pytest.raises(TypeError, match=r"model\[0\] \(params\) and model\[1\] \(grads\) must "
                                        r"both be numpy arrays or both GPU arrays, got "
                                        r"model\[1\] \(grads\) on the host"):
        fr.training.SGD((params, grads), lr=0.1)
    with pytest.raises(ValueError, match=r"model\[0\] \(params\) must be 1-D, got shape "
                                         r"\(2, 2\)"):
        fr.training.SGD((cuda.to_device(np.zeros((2, 2))), cuda.to_device(np.zeros((2, 2)))),
                        lr=0.1)
    with pytest.raises(TypeError, match=r"grads must be all numpy arrays or all GPU arrays, "
                                        r"got a mix"):
        fr.training.clip_grad_norm([params, grads], 1.0)
    with pytest.raises(ValueError, match=r"grads must be C-contiguous when they are GPU arrays"):
        fr.training.clip_grad_value(cuda.to_device(np.zeros((2, 3))).T, 1.0)


@pytest.mark.parametrize("norm_type", [2.0, 3.0, np.inf])
def test_device_clip_grad_norm_matches_numpy_and_is_deterministic(norm_type, monkeypatch):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(37), rng.standard_normal((3, 5))]
    expected_arrays = [a.copy() for a in arrays]
    expected = fr.training.clip_grad_norm(expected_arrays, 0.5, norm_type)
    totals = []
    for block in (8, 32):   # the block size does not change the summation order
        monkeypatch.setattr(_jit, "BLOCK", block)
        device_arrays = [cuda.to_device(a) for a in arrays]
        totals.append(fr.training.clip_grad_norm(device_arrays, 0.5, norm_type))
        for actual, wanted in zip(device_arrays, expected_arrays):
            assert_close(fr.to_numpy(actual), wanted, TOL64, "clipped gradients")
    assert totals[0] == totals[1]
    assert abs(totals[0] - expected) <= 1e-12 * expected
    with_nan = cuda.to_device(np.array([1.0, np.nan, 2.0]))
    assert np.isnan(device_clip.reduce_norm(with_nan, norm_type))


def test_device_clip_grad_value_keeps_nan():
    values = np.array([-3.0, -0.1, 0.0, 0.2, 5.0, np.nan])
    device_values = cuda.to_device(values)
    fr.training.clip_grad_value(device_values, 0.5)
    assert np.array_equal(fr.to_numpy(device_values), np.clip(values, -0.5, 0.5),
                          equal_nan=True)


def _device_mse(predictions, targets):
    """A user's loss for GPU outputs: computed here on the host, dy handed back on the GPU."""
    loss, dy = fr.losses.mse(fr.to_numpy(predictions), fr.to_numpy(targets))
    return loss, cuda.to_device(dy)


def test_truncated_bptt_trains_a_cuda_model_like_a_cpu_one():
    cpu, gpu = _pair(fr.GRU, FEATURES, HIDDEN)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, BATCH, FEATURES))
    targets = rng.standard_normal((5, BATCH, HIDDEN))
    results = []
    for model, move, loss_fn in ((cpu, lambda a: a, fr.losses.mse),
                                 (gpu, cuda.to_device, _device_mse)):
        sgd = fr.training.SGD(model, lr=0.1, momentum=0.9)
        engine = fr.training.TruncatedBPTT(model, loss_fn, k1=2, k2=3)
        state, loss = engine.run(move(x), move(targets), on_window=lambda i, loss: sgd.step())
        results.append((fr.to_numpy(model.flat_params), loss, state))
    (params, loss, state), (params_d, loss_d, state_d) = results
    assert _is_gpu(state_d)
    assert abs(loss_d - loss) <= TOL64 * loss
    assert_close(params_d, params, TOL64, "parameters after TBPTT")
    assert_close(fr.to_numpy(state_d), state, TOL64, "final state")
    # NumPy input to a CUDA model: the outputs come back to the host for fr.losses
    host_in = fr.GRU(FEATURES, HIDDEN, dtype=np.float64, seed=3, device="cuda")
    sgd = fr.training.SGD(host_in, lr=0.1, momentum=0.9)
    engine = fr.training.TruncatedBPTT(host_in, fr.losses.mse, k1=2, k2=3)
    state_h, _ = engine.run(x, targets, on_window=lambda i, loss: sgd.step())
    assert isinstance(state_h, np.ndarray)
    assert_close(fr.to_numpy(host_in.flat_params), params, TOL64, "parameters, host input")


def test_a_char_lm_step_on_the_gpu_is_timed_to_its_end(monkeypatch):
    """Trainer timing stops only once the step's kernels (the optimizer's, launched
    last and asynchronously) have finished, and the step equals the CPU's."""
    from fastrnn.charlm import OPTIMIZERS, Config, Trainer
    from fastrnn.data import random_batches
    from fastrnn.data.corpus import stdlib_text
    from fastrnn.saving import build_model, describe_model
    from fastrnn.training import TruncatedBPTT

    config = Config(hidden=8, batch=2, steps=3, seed=3, dtype="float64")
    cpu, gpu = (Trainer(stdlib_text(2000), config, progress=None) for _ in range(2))
    lm = gpu.lm
    lm.model = build_model(describe_model(lm.model), lm.model.state_dict(), "cuda")
    gpu.optimizer = OPTIMIZERS[config.optimizer](lm.model, lr=config.lr)
    gpu.engine = TruncatedBPTT(lm.model, lm.loss, config.steps)
    inputs, targets = random_batches(cpu.corpus, config.batch, config.steps,
                                     np.random.default_rng(0))[0]
    synced = []
    monkeypatch.setattr(cuda, "synchronize", lambda: synced.append(True))
    cpu._train_batch(inputs, targets)
    gpu._train_batch(inputs, targets)
    assert synced == [True]
    assert_close(fr.to_numpy(gpu.lm.model.flat_params), cpu.lm.model.flat_params, 1e-10,
                 "parameters after one step")
