"""Every bad argument raises TypeError/ValueError naming it, the expectation and what came."""

import numpy as np
import pytest

import fastrnn as fr


@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(input_size=0), ValueError, r"input_size must be an int >= 1, got 0"),
    (dict(input_size=2.5), TypeError, r"input_size must be an int, got float"),
    (dict(input_size=True), TypeError, r"input_size must be an int, got bool"),
    (dict(hidden_size=-3), ValueError, r"hidden_size must be an int >= 1, got -3"),
    (dict(num_layers=0), ValueError, r"num_layers must be an int >= 1, got 0"),
    (dict(dropout=1.0), ValueError, r"dropout must be a float in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), ValueError, r"dropout must be a float in \[0, 1\), got -0.1"),
    (dict(dropout="0.5"), TypeError, r"dropout must be a float in \[0, 1\), got str"),
    (dict(dtype=np.int32), TypeError, r"dtype must be numpy.float32 or numpy.float64, got int32"),
    (dict(dtype=np.float16), TypeError, r"dtype must be .* got float16"),
    (dict(dtype="banana"), TypeError, r"dtype must be .* got 'banana'"),
    (dict(device="tpu"), ValueError, r"device must be one of 'auto', 'cpu', 'cuda', got 'tpu'"),
    (dict(bias=1), TypeError, r"bias must be True or False, got int"),
    (dict(batch_first="yes"), TypeError, r"batch_first must be True or False, got str"),
    (dict(bidirectional=None), TypeError, r"bidirectional must be True or False, got NoneType"),
    (dict(seed=-1), ValueError, r"seed must be an int >= 0, got -1"),
])
@pytest.mark.parametrize("cls", [fr.RNN, fr.LSTM, fr.GRU])
def test_constructor_arguments(cls, kwargs, error, pattern):
    args = dict(input_size=3, hidden_size=4)
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        cls(args.pop("input_size"), args.pop("hidden_size"), **args)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: fr.RNN(3, 4, nonlinearity="sigmoid"), ValueError,
     r"nonlinearity must be one of 'tanh', 'relu', got 'sigmoid'"),
    (lambda: fr.LSTM(3, 4, proj_size=4), ValueError,
     r"proj_size must be smaller than hidden_size=4, got 4"),
    (lambda: fr.LSTM(3, 4, proj_size=-1), ValueError, r"proj_size must be an int >= 0, got -1"),
    (lambda: fr.LSTM(3, 4, peephole="no"), TypeError, r"peephole must be True or False"),
    (lambda: fr.LSTM(3, 4, coupled=1), TypeError, r"coupled must be True or False"),
    (lambda: fr.GRU(3, 4, reset_after=None), TypeError, r"reset_after must be True or False"),
    (lambda: fr.LSTMCell(0, 4), ValueError, r"input_size must be an int >= 1, got 0"),
    (lambda: fr.RNNCell(3, 4, nonlinearity="gelu"), ValueError, r"nonlinearity must be one of"),
])
def test_cell_specific_constructor_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_cuda_device_without_gpu_is_a_clear_error():
    from fastrnn.device import cuda_status
    if cuda_status()[0]:
        pytest.skip(f"device='cuda' is usable here: {cuda_status()[1]}")
    with pytest.raises(ValueError, match=r"device='cuda' was requested but CUDA is not usable: "):
        fr.LSTM(3, 4, device="cuda")
    assert fr.LSTM(3, 4, device="auto").device == "cpu"


@pytest.fixture
def lstm():
    return fr.LSTM(3, 4, num_layers=2, seed=0)


def x32(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda m: m(np.zeros((5, 2, 3), np.int64)), TypeError,
     r"x must have dtype float32 \(the layer's dtype\), got non-floating dtype int64"),
    (lambda m: m(np.zeros((5, 2, 3))), TypeError,
     r"x must have dtype float32 \(the layer's dtype\), got floating dtype float64; convert it "
     r"with .astype\(numpy.float32\) or build the layer with dtype=numpy.float64$"),
    (lambda m: m("not an array"), TypeError, r"x must be a numpy array of float32, got str"),
    (lambda m: m(x32(3)), ValueError, r"x must be 3-D \(T, B, input_size\) .* got shape \(3,\)"),
    (lambda m: m(x32(5, 2, 3, 1)), ValueError, r"x must be 3-D .* got shape \(5, 2, 3, 1\)"),
    (lambda m: m(x32(5, 2, 7)), ValueError,
     r"x must have input_size=3 features in its last axis, got shape \(5, 2, 7\)"),
    (lambda m: m(x32(0, 2, 3)), ValueError, r"x must have at least one time step and one batch"),
    (lambda m: m(x32(5, 2, 3), hx=x32(2, 2, 4)), TypeError,
     r"hx must be a pair \(h, c\) of arrays or None for the LSTM, got an array"),
    (lambda m: m(x32(5, 2, 3), hx=(x32(2, 2, 4),)), TypeError, r"hx must be a pair \(h, c\)"),
    (lambda m: m(x32(5, 2, 3), hx=(x32(1, 2, 4), x32(2, 2, 4))), ValueError,
     r"hx\[0\] must have shape \(2, 2, 4\), got \(1, 2, 4\)"),
    (lambda m: m(x32(5, 2, 3), hx=(x32(2, 2, 4), x32(2, 3, 4))), ValueError,
     r"hx\[1\] must have shape \(2, 2, 4\), got \(2, 3, 4\)"),
    (lambda m: m(x32(5, 2, 3), hx=(x32(2, 2, 4), np.zeros((2, 2, 4)))), TypeError,
     r"hx\[1\] must have dtype float32"),
    (lambda m: m(x32(5, 3), hx=(x32(2, 1, 4), x32(2, 4))), ValueError,
     r"hx\[0\] must have shape \(2, 4\), got \(2, 1, 4\)"),
    (lambda m: m(x32(5, 2, 3), lengths=[5]), ValueError,
     r"lengths must have one entry per batch entry, 2, got 1"),
    (lambda m: m(x32(5, 2, 3), lengths=[5, -1]), ValueError,
     r"lengths must be in \[0, 5\] \(the number of time steps\), got values from -1 to 5"),
    (lambda m: m(x32(5, 2, 3), lengths=[6, 2]), ValueError, r"lengths must be in \[0, 5\]"),
    (lambda m: m(x32(5, 2, 3), lengths=[2.0, 3.0]), TypeError,
     r"lengths must be integers, got list of dtype float64"),
    (lambda m: m(x32(5, 2, 3), lengths=[]), ValueError,
     r"lengths must have one entry per batch entry, 2, got 0"),
    (lambda m: m(x32(5, 2, 3), lengths=[2 ** 70, 1]), ValueError,
     r"lengths must be in \[0, 5\] \(the number of time steps\), got values from 1 to 1180591"),
    (lambda m: m(np.zeros((5, 2, 3), np.float16)), TypeError,
     r"got floating dtype float16; convert it with .astype\(numpy.float32\)$"),
    (lambda m: m(np.zeros((5, 2, 3), ">f4")), TypeError,
     r"got floating dtype >f4 \(non-native byte order\); convert it with "
     r".astype\(numpy.float32\)$"),
])
def test_call_arguments(lstm, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(lstm)


def test_gru_hx_must_be_an_array_of_the_right_shape():
    gru = fr.GRU(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match=r"hx must have shape \(2, 2, 4\), got \(1, 2, 4\)"):
        gru(x32(5, 2, 3), hx=x32(1, 2, 4))
    with pytest.raises(TypeError, match=r"hx must be one array for the GRU .* got a tuple of 2"):
        gru(x32(5, 2, 3), hx=(x32(2, 2, 4), x32(2, 2, 4)))


def test_batch_first_shape_message():
    layer = fr.RNN(3, 4, batch_first=True)
    with pytest.raises(ValueError, match=r"batch-first \(B, T, input_size\)"):
        layer(x32(3))


@pytest.mark.parametrize("call, error, pattern", [
    (lambda m, t: m.backward(t, x32(5, 2, 3)), ValueError,
     r"dy must have shape \(5, 2, 4\), got \(5, 2, 3\)"),
    (lambda m, t: m.backward(t, np.zeros((5, 2, 4))), TypeError, r"dy must have dtype float32"),
    (lambda m, t: m.backward(t, None, (x32(2, 2, 3), None)), ValueError,
     r"dh_n\[0\] must have shape \(2, 2, 4\), got \(2, 2, 3\)"),
    (lambda m, t: m.backward(t, None, x32(2, 2, 4)), TypeError, r"dh_n must be a pair"),
    (lambda m, t: m.backward("tape", None), TypeError,
     r"tape must be the Tape returned by this layer's forward\(\), got str"),
    (lambda m, t: m.backward(fr.LSTM(3, 4, num_layers=2).forward(x32(5, 2, 3))[2], None),
     TypeError, r"tape must be the Tape returned by this layer's forward\(\)"),
])
def test_backward_arguments(lstm, call, error, pattern):
    _, _, tape = lstm.forward(x32(5, 2, 3))
    with pytest.raises(error, match=pattern):
        call(lstm, tape)


def test_load_state_dict_errors_name_the_key(lstm):
    state = lstm.state_dict()
    missing = dict(state)
    del missing["bias_hh_l1"]
    with pytest.raises(ValueError, match=r"missing keys \['bias_hh_l1'\], unexpected keys \[\]"):
        lstm.load_state_dict(missing)
    extra = dict(state, weight_xx_l0=np.zeros(3))
    with pytest.raises(ValueError, match=r"unexpected keys \['weight_xx_l0'\]"):
        lstm.load_state_dict(extra)
    wrong = dict(state, weight_hh_l0=np.zeros((16, 5)))
    with pytest.raises(ValueError, match=r"state_dict\['weight_hh_l0'\] must have shape \(16, 4\)"):
        lstm.load_state_dict(wrong)
    text = dict(state, weight_hh_l0=np.full((16, 4), "a"))
    with pytest.raises(TypeError, match=r"state_dict\['weight_hh_l0'\] must be a real numeric"):
        lstm.load_state_dict(text)
    with pytest.raises(TypeError, match=r"state_dict must be a mapping of name to array, got list"):
        lstm.load_state_dict([1, 2])
    before = lstm.flat_params.copy()
    with pytest.raises(ValueError):  # nothing is written when any key is bad
        lstm.load_state_dict(dict(state, bias_ih_l0=np.ones(16), weight_hh_l1=np.zeros(3)))
    np.testing.assert_array_equal(lstm.flat_params, before)
    result = lstm.load_state_dict(missing, strict=False)
    assert result.missing_keys == ["bias_hh_l1"] and result.unexpected_keys == []


@pytest.mark.parametrize("call, error, pattern", [
    (lambda c: c(x32(2, 5)), ValueError, r"x must have shape \(B, 3\) or \(3,\), got \(2, 5\)"),
    (lambda c: c(x32(2, 3), (x32(2, 4), x32(3, 4))), ValueError,
     r"hx\[1\] must have shape \(2, 4\), got \(3, 4\)"),
    (lambda c: c(x32(2, 3), x32(2, 4)), TypeError, r"hx must be a pair \(h, c\)"),
    (lambda c: c(np.zeros((2, 3))), TypeError, r"x must have dtype float32"),
    (lambda c: c.backward(c.forward(x32(2, 3))[1], (x32(2, 5), None)), ValueError,
     r"dh\[0\] must have shape \(2, 4\), got \(2, 5\)"),
    (lambda c: c.backward(None, None), TypeError, r"tape must be the CellTape returned"),
])
def test_cell_call_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(fr.LSTMCell(3, 4))


def test_lists_are_converted_to_the_layer_dtype():
    layer = fr.RNN(2, 3, seed=0)
    y, _ = layer([[[1.0, 2.0]]])
    assert y.dtype == np.float32
    with pytest.raises(TypeError, match=r"x must be an array of float32, got a list"):
        layer([["a", None]])


def test_cell_state_dict_uses_torch_cell_names():
    cell = fr.LSTMCell(3, 4, peephole=True, seed=0)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ch"]
    partial = {"weight_ih": np.ones((16, 3), np.float32)}
    result = cell.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["weight_hh", "bias_ih", "bias_hh", "weight_ch"]
    np.testing.assert_array_equal(cell.params["weight_ih"], 1.0)
    with pytest.raises(ValueError, match=r"missing keys \['weight_hh', 'bias_ih', 'bias_hh'"):
        cell.load_state_dict(partial)
    with pytest.raises(ValueError, match=r"state_dict\['weight_ch'\] must have shape \(3, 4\)"):
        cell.load_state_dict(dict(cell.state_dict(), weight_ch=np.zeros((2, 4))))
