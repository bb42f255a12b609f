"""Linear, Embedding, Dropout, the losses and gradient clipping: against torch and
finite differences, and their error paths."""

import numpy as np
import pytest

import fastrnn as fr
from fastrnn import losses
from fastrnn.training import clip_grad_norm, clip_grad_value

from ._compare import assert_close, central_difference
from ._torch_ref import load_torch

RNG = np.random.default_rng(7)


# ------------------------------------------------------------------ Linear
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    torch = load_torch()
    layer = fr.Linear(5, 3, bias=bias, dtype=np.float64, seed=1)
    module = torch.nn.Linear(5, 3, bias=bias).double()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = RNG.standard_normal((4, 2, 5))
    dy = RNG.standard_normal((4, 2, 3))
    y, tape = layer.forward(x)
    dx = layer.backward(tape, dy)
    xt = torch.from_numpy(x).requires_grad_()
    yt = module(xt)
    yt.backward(torch.from_numpy(dy))
    assert_close(y, yt.detach().numpy(), 1e-14, "y")
    assert_close(dx, xt.grad.numpy(), 1e-14, "dx")
    for name, param in module.named_parameters():
        assert_close(layer.grads[name], param.grad.numpy(), 1e-14, name)


def test_linear_backward_matches_finite_differences():
    layer = fr.Linear(4, 3, dtype=np.float64, seed=2)
    x = RNG.standard_normal((5, 4))
    dy = RNG.standard_normal((5, 3))
    _, tape = layer.forward(x)
    layer.zero_grad()
    dx = layer.backward(tape, dy)

    def loss():
        return float(np.sum(layer(x) * dy))
    assert_close(dx, central_difference(loss, x), 1e-8, "dx")
    assert_close(layer.flat_grads, central_difference(loss, layer.flat_params), 1e-8, "grads")


def test_linear_rejects_bad_input():
    layer = fr.Linear(4, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\), got \(2, 5\)"):
        layer(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match="x must have dtype float32"):
        layer(np.zeros((2, 4)))
    _, tape = layer.forward(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\)"):
        layer.backward(tape, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="out_features must be"):
        fr.Linear(4, 0)


# --------------------------------------------------------------- Embedding
def test_embedding_matches_torch_with_repeated_indices():
    torch = load_torch()
    table = fr.Embedding(6, 3, dtype=np.float64, seed=0)
    module = torch.nn.Embedding(6, 3).double()
    module.load_state_dict({"weight": torch.from_numpy(table.params["weight"].copy())})
    indices = np.array([[1, 2, 1], [5, 1, 0]])
    dy = RNG.standard_normal((2, 3, 3))
    y, tape = table.forward(indices)
    assert table.backward(tape, dy) is None
    yt = module(torch.from_numpy(indices))
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    assert_close(table.grads["weight"], module.weight.grad.numpy(), 1e-15, "weight grad")


def test_embedding_rejects_bad_indices():
    table = fr.Embedding(4, 2)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\), got values from 0 to 4"):
        table(np.array([0, 4]))
    with pytest.raises(ValueError, match="got values from -1"):
        table(np.array([-1, 2]))
    with pytest.raises(TypeError, match="indices must be an integer array"):
        table(np.array([0.0, 1.0]))
    _, tape = table.forward(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 2\)"):
        table.backward(tape, np.zeros((2, 3), np.float32))


# ------------------------------------------------------------------ Dropout
def test_dropout_backward_uses_the_forward_mask_and_inference_is_identity():
    drop = fr.Dropout(0.25, seed=3)
    x = np.ones((200, 50))
    assert drop(x) is x
    y, tape = drop.forward(x)
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_array_equal(y[kept], np.full(kept.sum(), 1 / 0.75))
    np.testing.assert_array_equal(drop.backward(tape, np.ones_like(x)), y)


def test_dropout_rejects_bad_input():
    with pytest.raises(ValueError, match=r"dropout must be a float in \[0, 1\), got 1.0"):
        fr.Dropout(1.0)
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        fr.Dropout(0.5).forward(np.ones(3, np.int64))


# ------------------------------------------------------------------- losses
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("ignore_index", [None, 2])
def test_cross_entropy_matches_torch(reduction, ignore_index):
    torch = load_torch()
    logits = RNG.standard_normal((3, 4, 5)) * 3
    targets = RNG.integers(0, 5, (3, 4))
    targets[0, 0] = 2
    loss, grad = losses.softmax_cross_entropy(logits, targets, reduction=reduction,
                                              ignore_index=ignore_index)
    zt = torch.from_numpy(logits).requires_grad_()
    ref = torch.nn.functional.cross_entropy(
        zt.reshape(-1, 5), torch.from_numpy(targets).reshape(-1), reduction=reduction,
        ignore_index=-100 if ignore_index is None else ignore_index)
    ref.backward()
    assert abs(loss - ref.item()) <= 1e-13 * abs(ref.item())
    assert_close(grad, zt.grad.numpy(), 1e-13, "dlogits")


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], np.float32)
    loss, grad = losses.softmax_cross_entropy(logits, np.array([1, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert abs(loss - (1e4 + np.log(2)) / 2) < 1e-2


def test_cross_entropy_gradient_matches_finite_differences():
    logits = RNG.standard_normal((4, 6))
    targets = RNG.integers(0, 6, 4)
    _, grad = losses.softmax_cross_entropy(logits, targets)
    numeric = central_difference(lambda: losses.softmax_cross_entropy(logits, targets)[0],
                                  logits)
    assert_close(grad, numeric, 1e-8, "dlogits")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_and_binary_logistic_match_torch(reduction):
    torch = load_torch()
    p = RNG.standard_normal((4, 3)) * 4
    t = RNG.standard_normal((4, 3))
    b = (RNG.random((4, 3)) > 0.5).astype(np.float64)
    for function, reference, target in [
            (losses.mse, torch.nn.functional.mse_loss, t),
            (losses.binary_logistic, torch.nn.functional.binary_cross_entropy_with_logits, b)]:
        loss, grad = function(p, target, reduction=reduction)
        pt = torch.from_numpy(p).requires_grad_()
        ref = reference(pt, torch.from_numpy(target), reduction=reduction)
        ref.backward()
        assert abs(loss - ref.item()) <= 1e-13 * abs(ref.item()), function.__name__
        assert_close(grad, pt.grad.numpy(), 1e-13, function.__name__)


def test_losses_reject_bad_input():
    with pytest.raises(ValueError, match=r"targets must have shape logits.shape\[:-1\]"):
        losses.softmax_cross_entropy(np.zeros((2, 3)), np.zeros(3, int))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\)"):
        losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="targets must be an integer array"):
        losses.softmax_cross_entropy(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(TypeError, match="logits must be a floating-point array"):
        losses.softmax_cross_entropy(np.zeros((2, 3), int), np.zeros(2, int))
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.mse(np.zeros(2), np.zeros(2), reduction="none")
    with pytest.raises(ValueError, match=r"targets must have the predictions' shape \(2,\)"):
        losses.mse(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"targets must have the logits' shape"):
        losses.binary_logistic(np.zeros(2), np.zeros(3))


def test_perplexity():
    assert losses.perplexity(0.0) == 1.0
    assert abs(losses.perplexity(np.log(27.0)) - 27.0) < 1e-12


# ----------------------------------------------------------------- clipping
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = load_torch()
    arrays = [RNG.standard_normal((3, 4)), RNG.standard_normal(5)]
    tensors = [torch.from_numpy(a.copy()) for a in arrays]
    params = [torch.nn.Parameter(torch.zeros_like(t)) for t in tensors]
    for p, t in zip(params, tensors):
        p.grad = t
    ref = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    total = clip_grad_norm(arrays, max_norm, norm_type=norm_type)
    assert abs(total - ref.item()) <= 1e-13 * ref.item()
    for a, p in zip(arrays, params):
        assert_close(a, p.grad.numpy(), 1e-14, "clipped")


def test_clip_grad_norm_takes_a_model_and_clips_its_flat_buffer():
    layer = fr.LSTM(2, 3, dtype=np.float64, seed=0)
    layer.flat_grads[...] = 1.0
    total = clip_grad_norm(layer, 1.0)
    assert abs(total - np.sqrt(layer.flat_grads.size)) < 1e-12
    assert abs(np.linalg.norm(layer.flat_grads) - 1.0) < 1e-5
    assert abs(np.linalg.norm(layer.grads["weight_hh_l0"]) -
               np.sqrt(layer.grads["weight_hh_l0"].size / layer.flat_grads.size)) < 1e-5


def test_clip_grad_norm_nonfinite():
    grads = np.array([1.0, np.inf])
    with pytest.raises(FloatingPointError, match="the total 2.0-norm of the gradients is inf"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(grads, [1.0, np.inf])


def test_clip_grad_value_matches_torch():
    torch = load_torch()
    grads = RNG.standard_normal(20) * 3
    tensor = torch.nn.Parameter(torch.zeros(20, dtype=torch.float64))
    tensor.grad = torch.from_numpy(grads.copy())
    torch.nn.utils.clip_grad_value_([tensor], 1.5)
    clip_grad_value({"g": grads}, 1.5)
    np.testing.assert_array_equal(grads, tensor.grad.numpy())


def test_clipping_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_norm must be positive and finite, got 0"):
        clip_grad_norm(np.ones(2), 0)
    with pytest.raises(TypeError, match="max_norm must be a real number"):
        clip_grad_norm(np.ones(2), "1")
    with pytest.raises(ValueError, match="norm_type must be positive"):
        clip_grad_norm(np.ones(2), 1.0, norm_type=-1)
    with pytest.raises(TypeError, match="grads must be an ndarray"):
        clip_grad_norm([1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="clip_value must be positive"):
        clip_grad_value(np.ones(2), -1.0)
