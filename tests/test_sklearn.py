"""The scikit-learn estimators: learning, conventions, pipelines, errors, estimator checks."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (check_classifiers_train,  # noqa: E402
                                            parametrize_with_checks)

import fastrnn as fr  # noqa: E402
import fastrnn.sklearn as fastrnn_sklearn  # noqa: E402
from fastrnn.sklearn import EXPECTED_FAILED_CHECKS, RNNClassifier, RNNRegressor  # noqa: E402

LABELS = np.array(["early", "middle", "late"])


def bump_data(count, rng, steps=12):
    """Univariate noisy sequences with a bump in one of three segments; the label says
    which. Telling "early" from "middle" at the last step needs memory."""
    classes = rng.integers(0, 3, size=count)
    X = rng.normal(0.0, 0.5, size=(count, steps, 1))
    segment = steps // 3
    for row, label in enumerate(classes):
        X[row, label * segment:(label + 1) * segment, 0] += 1.5
    return X, LABELS[classes]


def sum_data(count, rng, steps=10):
    """Two features per step; targets the sum of feature 0 and the mean of feature 1."""
    X = rng.normal(size=(count, steps, 2))
    y = np.stack([X[:, :, 0].sum(axis=1) / np.sqrt(steps), X[:, :, 1].mean(axis=1)], axis=1)
    return X, y


def small(cls, **params):
    return cls(**dict(dict(hidden_size=8, epochs=15, random_state=0), **params))


# ---------------------------------------------------------------- learning
def test_classifier_learns_where_the_bump_was():
    rng = np.random.default_rng(0)
    X, y = bump_data(300, rng)
    X_test, y_test = bump_data(200, rng)
    clf = small(RNNClassifier, hidden_size=16, epochs=25).fit(X, y)
    assert sorted(clf.classes_) == sorted(LABELS) and list(clf.classes_) == sorted(LABELS)
    assert clf.n_features_in_ == 1 and clf.n_iter_ == 25 and len(clf.loss_curve_) == 25
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    accuracy = clf.score(X_test, y_test)
    assert accuracy >= 0.85, accuracy  # chance is 1/3


def test_regressor_learns_two_targets():
    rng = np.random.default_rng(1)
    X, y = sum_data(300, rng)
    X_test, y_test = sum_data(200, rng)
    reg = small(RNNRegressor, cell="gru", pooling="mean", epochs=30).fit(X, y)
    assert reg.n_outputs_ == 2 and reg.predict(X_test).shape == (200, 2)
    r2 = reg.score(X_test, y_test)
    assert r2 >= 0.9, r2  # predicting the mean scores 0


def test_probabilities_agree_with_predict_for_two_int_classes():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 6, 3))
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int) * 5  # labels 0 and 5
    clf = small(RNNClassifier, cell="rnn").fit(X, y)
    proba = clf.predict_proba(X)
    assert clf.classes_.tolist() == [0, 5] and proba.shape == (80, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_regressor_returns_1d_predictions_for_1d_targets():
    rng = np.random.default_rng(3)
    X, y = sum_data(40, rng)
    assert small(RNNRegressor, epochs=2).fit(X, y[:, 0]).predict(X).shape == (40,)
    assert small(RNNRegressor, epochs=2).fit(X, y[:, :1]).predict(X).shape == (40, 1)


def test_2d_input_is_univariate_sequences():
    rng = np.random.default_rng(4)
    X, y = bump_data(60, rng)
    flat = small(RNNClassifier, epochs=3).fit(X[:, :, 0], y)
    full = small(RNNClassifier, epochs=3).fit(X, y)
    assert flat.n_features_in_ == 1
    assert np.array_equal(flat.model_.flat_params, full.model_.flat_params)
    assert np.array_equal(flat.predict_proba(X[:, :, 0]), full.predict_proba(X))


def test_sequences_of_another_length_are_predicted():
    rng = np.random.default_rng(5)
    X, y = bump_data(60, rng, steps=12)
    clf = small(RNNClassifier, epochs=2).fit(X, y)
    longer, _ = bump_data(7, rng, steps=20)
    assert clf.predict_proba(longer).shape == (7, 3)


def test_prediction_in_chunks_equals_one_pass(monkeypatch):
    rng = np.random.default_rng(19)
    X, y = bump_data(40, rng)
    clf = small(RNNClassifier, epochs=2, pooling="mean").fit(X, y)
    logits = clf.model_(np.ascontiguousarray(X.transpose(1, 0, 2)))[0].mean(axis=0)
    monkeypatch.setattr(fastrnn_sklearn, "_PREDICT_CHUNK", 7)
    np.testing.assert_allclose(np.log(clf.predict_proba(X)),
                               logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)),
                               rtol=1e-12, atol=1e-12)
    assert np.array_equal(clf.predict(X), clf.classes_[logits.argmax(axis=1)])


def test_float32_estimator_computes_in_float32():
    rng = np.random.default_rng(6)
    X, y = bump_data(40, rng)
    clf = small(RNNClassifier, epochs=2, dtype="float32").fit(X, y)
    assert clf.model_.dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32


# ----------------------------------------------------------- determinism
@pytest.mark.parametrize("params", [{}, {"tbptt": 4, "pooling": "mean"}, {"optimizer": "sgd"}])
def test_same_random_state_same_bits(params):
    rng = np.random.default_rng(7)
    X, y = bump_data(50, rng)
    first = small(RNNClassifier, epochs=3, **params).fit(X, y)
    second = small(RNNClassifier, epochs=3, **params).fit(X, y)
    assert np.array_equal(first.model_.flat_params, second.model_.flat_params)
    assert first.loss_curve_ == second.loss_curve_
    other = small(RNNClassifier, epochs=3, random_state=1, **params).fit(X, y)
    assert not np.array_equal(first.model_.flat_params, other.model_.flat_params)


# ---------------------------------------------------------- truncated BPTT
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_tbptt_as_long_as_the_sequence_is_full_bptt(pooling):
    rng = np.random.default_rng(8)
    X, y = sum_data(40, rng, steps=7)
    full = small(RNNRegressor, epochs=3, pooling=pooling).fit(X, y)
    truncated = small(RNNRegressor, epochs=3, pooling=pooling, tbptt=7).fit(X, y)
    np.testing.assert_allclose(truncated.model_.flat_params, full.model_.flat_params,
                               rtol=1e-12, atol=1e-14)


def test_tbptt_gradient_reaches_back_k_steps():
    """pooling="last", tbptt=k: the gradient is that of the last step's loss through the
    last k steps, with the state entering them held constant."""
    rng = np.random.default_rng(9)
    X, y = sum_data(6, rng, steps=11)
    reg = small(RNNRegressor, epochs=1, tbptt=4).fit(X, y)
    model = reg.model_
    x = np.ascontiguousarray(X.transpose(1, 0, 2))
    reg._gradients(model, fr.training.TruncatedBPTT(model, lambda a, b: (0.0, b), 4), x, y,
                   "last")
    truncated = model.flat_grads.copy()
    _, state = model(x[:7])
    z, _, tape = model.forward(x[7:], state)
    _, dz = reg._pooled_loss(z, y, "last")
    model.zero_grad()
    model.backward(tape, dz)
    np.testing.assert_allclose(truncated, model.flat_grads, rtol=1e-12, atol=1e-15)
    z_full, _, tape = model.forward(x)  # and the full gradient is a different one
    model.zero_grad()
    model.backward(tape, reg._pooled_loss(z_full, y, "last")[1])
    assert not np.allclose(truncated, model.flat_grads, rtol=1e-6)


# ------------------------------------------------------ sklearn machinery
def test_clone_gives_an_unfitted_copy_with_the_same_params():
    rng = np.random.default_rng(10)
    X, y = bump_data(30, rng)
    clf = small(RNNClassifier, cell="gru", tbptt=3, clip=None, epochs=1).fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "model_")
    with pytest.raises(NotFittedError):
        copy.predict(X)


def test_set_params_changes_the_model():
    clf = RNNClassifier().set_params(hidden_size=5, cell="rnn")
    assert clf.get_params()["hidden_size"] == 5
    X, y = bump_data(20, np.random.default_rng(11))
    assert clf.set_params(epochs=1).fit(X, y).model_.layers[0].hidden_size == 5
    assert type(clf.model_.layers[0]) is fr.RNN


def test_inside_a_pipeline():
    rng = np.random.default_rng(12)
    X, y = bump_data(200, rng)
    X_test, y_test = bump_data(100, rng)
    pipe = make_pipeline(StandardScaler(), small(RNNClassifier, hidden_size=16, epochs=20))
    pipe.fit(X[:, :, 0] * 10 + 3, y)  # 2-D: the scaler standardises each time step
    assert pipe.score(X_test[:, :, 0] * 10 + 3, y_test) >= 0.7


def test_grid_search_over_hidden_size():
    rng = np.random.default_rng(13)
    X, y = sum_data(60, rng, steps=5)
    search = GridSearchCV(small(RNNRegressor, epochs=3), {"hidden_size": [2, 6]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["hidden_size"] in (2, 6)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_estimator_.model_.layers[0].hidden_size == search.best_params_[
        "hidden_size"]


def test_pickle_keeps_the_fitted_model_and_the_original(tmp_path):
    rng = np.random.default_rng(14)
    X, y = bump_data(30, rng)
    clf = small(RNNClassifier, epochs=2).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert hasattr(clf, "model_")  # pickling must not strip the original
    fr.save(tmp_path / "model.npz", clf.model_)
    assert np.array_equal(fr.load(tmp_path / "model.npz").flat_params, clf.model_.flat_params)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("param, value, error, message", [
    ("cell", "cnn", ValueError, "cell must be one of 'rnn', 'lstm', 'gru', got 'cnn'"),
    ("hidden_size", 0, ValueError, "hidden_size must be an int >= 1, got 0"),
    ("hidden_size", 2.5, TypeError, "hidden_size must be an int, got float 2.5"),
    ("num_layers", 0, ValueError, "num_layers must be an int >= 1, got 0"),
    ("pooling", "max", ValueError, "pooling must be one of 'last', 'mean', got 'max'"),
    ("epochs", 0, ValueError, "epochs must be an int >= 1, got 0"),
    ("batch_size", None, TypeError, "batch_size must be an int, got NoneType"),
    ("optimizer", "lbfgs", ValueError, "optimizer must be one of 'adam', 'sgd', got 'lbfgs'"),
    ("lr", 0.0, ValueError, "lr must be positive and finite, got 0.0"),
    ("lr", float("nan"), TypeError, "lr must be a real number, got float nan"),
    ("clip", -1.0, ValueError, "clip must be positive and finite, got -1.0"),
    ("tbptt", 0, ValueError, "tbptt must be an int >= 1, got 0"),
    ("dtype", "int32", TypeError, "dtype must be numpy.float32 or numpy.float64, got int32"),
    ("device", "tpu", ValueError, "device must be one of 'auto', 'cpu', 'cuda', got 'tpu'"),
])
@pytest.mark.parametrize("cls", [RNNClassifier, RNNRegressor])
def test_bad_params_fail_in_fit_naming_the_param(cls, param, value, error, message):
    estimator = cls(**{param: value})  # __init__ only stores
    assert estimator.get_params()[param] is value
    X, y = sum_data(10, np.random.default_rng(15))
    y = y[:, 0] > 0 if cls is RNNClassifier else y
    with pytest.raises(error, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        estimator.fit(X, y)


@pytest.mark.parametrize("X, message", [
    (np.zeros((4, 3, 2, 1)), r"X must be 3-D \(n_samples, T, n_features\) or 2-D "
                             r"\(n_samples, T\) univariate sequences, got shape \(4, 3, 2, 1\)"),
    (np.zeros((4, 0, 2)), r"X must have at least one time step and one feature, "
                          r"got shape \(4, 0, 2\)"),
    (np.zeros((4, 3, 0)), r"X must have at least one time step and one feature"),
    (np.full((4, 3, 2), np.nan), "Input X contains NaN"),
    (np.zeros(4), "Expected 2D array, got 1D array instead"),
])
def test_bad_X_in_fit(X, message):
    with pytest.raises(ValueError, match=message):
        small(RNNClassifier).fit(X, np.array([0, 1, 0, 1]))


def test_sparse_and_complex_X_are_refused():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    y = np.array([0, 1, 0, 1])
    with pytest.raises(TypeError, match="Sparse data was passed for X, but dense data"):
        small(RNNClassifier).fit(scipy_sparse.csr_matrix(np.eye(4)), y)
    with pytest.raises(ValueError, match="Complex data not supported"):
        small(RNNClassifier).fit(np.ones((4, 3, 2)) * 1j, y)


def test_predict_checks_the_features_per_step():
    X, y = sum_data(20, np.random.default_rng(16))
    reg = small(RNNRegressor, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"X has 3 features per step, but RNNRegressor is "
                                         r"expecting 2 features as input \(shape \(5, 10, 3\)\)"):
        reg.predict(np.zeros((5, 10, 3)))
    with pytest.raises(ValueError, match="X has 1 features per step"):
        reg.predict(np.zeros((5, 10)))


def test_classifier_target_errors():
    X, _ = bump_data(6, np.random.default_rng(17))
    with pytest.raises(ValueError, match="y must hold at least 2 classes to train a "
                                         "classifier, got 1 class: 'a'"):
        small(RNNClassifier).fit(X, ["a"] * 6)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        small(RNNClassifier).fit(X, np.linspace(0, 1, 6))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small(RNNClassifier).fit(X, [0, 1])
    with pytest.raises(NotFittedError):
        RNNClassifier().predict_proba(X)


def test_divergence_is_reported():
    X, y = sum_data(20, np.random.default_rng(18))
    reg = small(RNNRegressor, optimizer="sgd", lr=1e12, clip=None, epochs=40)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            FloatingPointError, match="training diverged in epoch .*lower lr"):
        reg.fit(X, y * 1e6)


# ------------------------------------------------------------ import rules
def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_import_fastrnn_imports_neither_sklearn_nor_torch():
    result = _run("import sys, fastrnn; import fastrnn.saving; "
                  "print(sorted(m for m in ('sklearn', 'torch') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_sklearn_the_import_error_says_how_to_install():
    result = _run("import sys; sys.modules['sklearn'] = None\n"
                  "try:\n    import fastrnn.sklearn\n"
                  "except ImportError as error:\n    print(error)")
    assert result.returncode == 0, result.stderr
    assert "pip install scikit-learn" in result.stdout


def test_an_old_sklearn_is_refused_with_the_upgrade_command():
    result = _run("import sklearn; sklearn.__version__ = '1.5.2'\n"
                  "try:\n    import fastrnn.sklearn\n"
                  "except ImportError as error:\n    print(error)")
    assert result.returncode == 0, result.stderr
    assert "needs scikit-learn >= 1.6 (estimator tags), found 1.5.2: pip install -U" in (
        result.stdout)


# -------------------------------------------------------- estimator checks
@parametrize_with_checks(
    [RNNClassifier(hidden_size=8, random_state=0), RNNRegressor(hidden_size=8, random_state=0)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS[type(estimator).__name__],
    xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


class _FixedLengthClassifier(RNNClassifier):
    """Refuses 2-D X of another length than in fit, the one thing
    ``check_classifiers_train`` asks that a sequence model does not do."""

    def fit(self, X, y):
        self._fit_length = np.shape(X)[1]
        return super().fit(X, y)

    def _check_predict_X(self, X):
        if np.ndim(X) == 2 and np.shape(X)[1] != self._fit_length:
            raise ValueError(f"X has {np.shape(X)[1]} steps, fit had {self._fit_length}")
        return super()._check_predict_X(X)


@pytest.mark.parametrize("variant", [{}, {"readonly_memmap": True},
                                     {"readonly_memmap": True, "X_dtype": np.float32}])
def test_check_classifiers_train_fails_only_on_transposed_X(variant):
    """The xfailed check, run to its end: accuracy > 0.83, predict_proba, shapes."""
    check_classifiers_train("RNNClassifier", _FixedLengthClassifier(hidden_size=8, random_state=0),
                            **variant)

