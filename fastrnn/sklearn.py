"""scikit-learn estimators over sequences: :class:`RNNClassifier` and :class:`RNNRegressor`.

scikit-learn is an optional dependency (``pip install 'fastrnn[sklearn]'``);
``import fastrnn`` never imports it, this module does.

Each estimator is the model

    X (n_samples, T, n_features) -> RNN/LSTM/GRU -> Linear at every step -> pooling over time

as one :class:`fastrnn.Sequential` (``model_``), trained with the library's
losses (softmax cross-entropy, squared error), global-norm clipping,
optimizers and, optionally, :class:`~fastrnn.training.TruncatedBPTT`. The
read-out is affine, so pooling its outputs (the last step's, or the mean over
the steps) equals reading out the pooled hidden state, up to rounding.

Input
-----
``X`` is a 3-D array (n_samples, T, n_features): n_samples sequences of T
steps of n_features each; or a 2-D array (n_samples, T), read as univariate
sequences (n_features = 1). ``n_features_in_`` is the number of features
*per step*: sequences of any length T may be predicted, whatever the
length seen in ``fit``. ``X`` is converted to the estimator's ``dtype`` (as
scikit-learn estimators do; the library's layers themselves never cast).
NaN, infinities, complex numbers, sparse matrices and empty arrays are refused.

Estimator checks
----------------
``sklearn.utils.estimator_checks`` runs on both estimators
(``tests/test_sklearn.py``); the few checks that cannot hold for sequence
models are listed with the reason in :data:`EXPECTED_FAILED_CHECKS` and
passed to the checks as expected failures (``docs/pipelines.md``).
"""

import re

import numpy as np

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_array, check_is_fitted, check_X_y
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError("fastrnn.sklearn needs scikit-learn (>= 1.6): pip install scikit-learn "
                      "(or pip install 'fastrnn[sklearn]')") from error

from . import losses
from ._validation import check_choice, check_int, check_positive, resolve_dtype
from .device import DEVICES
from .nn import GRU, LSTM, RNN, Linear, Sequential
from .saving import build_model, describe_model
from .training import TruncatedBPTT, clip_grad_norm, optimizers

if tuple(map(int, re.match(r"(\d+)\.(\d+)", sklearn.__version__).groups())) < (1, 6):
    raise ImportError(f"fastrnn.sklearn needs scikit-learn >= 1.6 (estimator tags), found "
                      f"{sklearn.__version__}: pip install -U scikit-learn")

__all__ = ["RNNClassifier", "RNNRegressor", "EXPECTED_FAILED_CHECKS"]

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
OPTIMIZERS = {"adam": optimizers.Adam, "sgd": optimizers.SGD}
POOLINGS = ("last", "mean")
#: Samples per forward pass in predict (the output does not depend on it).
_PREDICT_CHUNK = 1024

_NOT_FEATURE_COUNT = (
    "2-D X is read as univariate sequences, (n_samples, T): its second axis is time, not "
    "features, and a sequence model predicts sequences of any length, so X with another "
    "number of columns than in fit is valid input (n_features_in_ counts the features of "
    "one step, 1 here), not an error")

#: Estimator checks expected to fail, by estimator class name, with the reason.
EXPECTED_FAILED_CHECKS = {
    "RNNClassifier": {
        "check_n_features_in": _NOT_FEATURE_COUNT,
        "check_n_features_in_after_fitting": _NOT_FEATURE_COUNT,
        "check_classifiers_train": _NOT_FEATURE_COUNT + " (the check predicts on X.T and "
                                                        "expects a ValueError)",
    },
    "RNNRegressor": {
        "check_n_features_in": _NOT_FEATURE_COUNT,
        "check_n_features_in_after_fitting": _NOT_FEATURE_COUNT,
    },
}


def _given_gradient(outputs, gradient):
    """A "loss" for :class:`TruncatedBPTT` whose gradient was computed beforehand on the
    whole sequence (the pooled loss is not a sum over windows): it hands back the
    window's slice of that gradient."""
    return 0.0, gradient


class _RNNEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, fit loop, prediction."""

    def __init__(self, cell="lstm", hidden_size=32, num_layers=1, pooling="last", epochs=50,
                 batch_size=32, optimizer="adam", lr=0.01, clip=1.0, tbptt=None,
                 dtype="float64", device="auto", random_state=None):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.pooling = pooling
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.clip = clip
        self.tbptt = tbptt
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------ sklearn hooks
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    def __getstate__(self):
        """Pickle ``model_`` as its :func:`fastrnn.save` description and arrays: a layer
        that has run holds its backend module, which pickle refuses, and a Sequential's
        layers are views into its one buffer."""
        state = dict(super().__getstate__())  # a copy: on Python >= 3.11 it is self.__dict__
        model = state.pop("model_", None)
        if model is not None:
            state["_model_description"] = describe_model(model)
            state["_model_arrays"] = model.state_dict()
        return state

    def __setstate__(self, state):
        state = dict(state)
        description = state.pop("_model_description", None)
        arrays = state.pop("_model_arrays", None)
        if description is not None:
            state["model_"] = build_model(description, arrays, state.get("device", "auto"),
                                          source="the pickled estimator")
        super().__setstate__(state)

    # ---------------------------------------------------------------- checking
    def _checked_params(self):
        """The hyperparameters, validated (in ``fit``, as scikit-learn asks)."""
        return dict(
            cell=check_choice("cell", self.cell, tuple(CELLS)),
            hidden_size=check_int("hidden_size", self.hidden_size, 1),
            num_layers=check_int("num_layers", self.num_layers, 1),
            pooling=check_choice("pooling", self.pooling, POOLINGS),
            epochs=check_int("epochs", self.epochs, 1),
            batch_size=check_int("batch_size", self.batch_size, 1),
            optimizer=check_choice("optimizer", self.optimizer, tuple(OPTIMIZERS)),
            lr=check_positive("lr", self.lr),
            clip=None if self.clip is None else check_positive("clip", self.clip),
            tbptt=None if self.tbptt is None else check_int("tbptt", self.tbptt, 1),
            dtype=resolve_dtype(self.dtype),
            device=check_choice("device", self.device, DEVICES))

    def _time_major(self, X, reset):
        """Checked X (2-D or 3-D, already converted by sklearn) as a (T, n, F) array."""
        if X.ndim not in (2, 3):
            raise ValueError("X must be 3-D (n_samples, T, n_features) or 2-D (n_samples, T) "
                             f"univariate sequences, got shape {X.shape}")
        if X.ndim == 2:
            X = X[:, :, None]
        if X.shape[1] == 0 or X.shape[2] == 0:
            raise ValueError("X must have at least one time step and one feature, "
                             f"got shape {X.shape}")
        if reset:
            self.n_features_in_ = X.shape[2]
        elif X.shape[2] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[2]} features per step, but "
                             f"{type(self).__name__} is expecting {self.n_features_in_} "
                             f"features as input (shape {X.shape})")
        return np.ascontiguousarray(X.transpose(1, 0, 2))

    def _check_predict_X(self, X):
        check_is_fitted(self, "model_")
        X = check_array(X, dtype=self.model_.dtype, allow_nd=True, estimator=self,
                        input_name="X")
        return self._time_major(X, reset=False)

    # ----------------------------------------------------------------- training
    def _fit(self, X, y, multi_output):
        """Validate, build ``model_`` and train it; ``y`` is turned into loss targets by
        :meth:`_targets`. Returns ``self``."""
        params = self._checked_params()
        X, y = check_X_y(X, y, dtype=params["dtype"], allow_nd=True, multi_output=multi_output,
                         y_numeric=multi_output, estimator=self)
        X = self._time_major(X, reset=True)
        targets, outputs = self._targets(y, params["dtype"])
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=2)
        common = dict(dtype=params["dtype"], device=params["device"])
        model = Sequential([
            CELLS[params["cell"]](X.shape[2], params["hidden_size"], params["num_layers"],
                                  seed=int(seeds[0]), **common),
            Linear(params["hidden_size"], outputs, seed=int(seeds[1]), **common)])
        optimizer = OPTIMIZERS[params["optimizer"]](model, lr=params["lr"])
        engine = (None if params["tbptt"] is None
                  else TruncatedBPTT(model, _given_gradient, params["tbptt"]))
        samples = X.shape[1]
        self.loss_curve_ = []
        for epoch in range(params["epochs"]):
            order = rng.permutation(samples)
            total = 0.0
            for start in range(0, samples, params["batch_size"]):
                chosen = order[start:start + params["batch_size"]]
                loss = self._gradients(model, engine, X[:, chosen], targets[chosen],
                                       params["pooling"])
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"training diverged in epoch {epoch + 1}: the loss is {loss}; lower lr, "
                        "set clip, or scale X (and y)")
                if params["clip"] is not None:
                    clip_grad_norm(model, params["clip"])
                optimizer.step()
                total += loss * len(chosen)
            self.loss_curve_.append(total / samples)
        self.model_ = model
        self.n_iter_ = params["epochs"]
        return self

    def _gradients(self, model, engine, x, targets, pooling):
        """The minibatch loss; its gradient left in ``model.flat_grads``.

        Full BPTT: one forward with a tape, one backward. Truncated: the pooled
        loss needs every step's output, so an inference forward gives the output
        gradient, which :class:`TruncatedBPTT` then backpropagates window by
        window (each step's gradient reaches back at most ``tbptt`` steps); the
        windows' gradients are summed into one optimizer step.
        """
        if engine is None:
            z, _, tape = model.forward(x)
            loss, dz = self._pooled_loss(z, targets, pooling)
            model.zero_grad()
            model.backward(tape, dz, input_grad=False)
            return loss
        z, _ = model(x)
        loss, dz = self._pooled_loss(z, targets, pooling)
        summed = np.zeros_like(model.flat_grads)
        engine.run(x, dz, on_window=lambda index, _: np.add(summed, model.flat_grads,
                                                              out=summed))
        model.flat_grads[...] = summed
        return loss

    def _pooled_loss(self, z, targets, pooling):
        """Loss of the pooled outputs ``z`` (T, B, outputs) and its gradient wrt ``z``."""
        loss, dpooled = self._loss(_pool(z, pooling), targets)
        dz = np.zeros_like(z)
        if pooling == "last":
            dz[-1] = dpooled
        else:
            dz[...] = dpooled / z.dtype.type(z.shape[0])
        return loss, dz

    def _pooled_outputs(self, X):
        """The pooled model outputs (n_samples, outputs) of a checked time-major ``X``."""
        parts = [_pool(self.model_(X[:, start:start + _PREDICT_CHUNK])[0], self.pooling)
                 for start in range(0, X.shape[1], _PREDICT_CHUNK)]
        return np.concatenate(parts)


def _pool(z, pooling):
    """(T, B, F) -> (B, F): the last step, or the mean over the steps."""
    return z[-1] if pooling == "last" else z.mean(axis=0)


_PARAMETERS = """
    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}, default "lstm"
        The recurrent layer: :class:`fastrnn.LSTM`, :class:`fastrnn.GRU` or
        :class:`fastrnn.RNN` (tanh).
    hidden_size : int, default 32
    num_layers : int, default 1
    pooling : {"last", "mean"}, default "last"
        What summarises a sequence: the output at its last step, or the mean
        of the outputs over its steps.
    epochs : int, default 50
        Passes over the training data (minibatches in a fresh random order each).
    batch_size : int, default 32
    optimizer : {"adam", "sgd"}, default "adam"
    lr : float, default 0.01
        Learning rate.
    clip : float or None, default 1.0
        Maximum global 2-norm of the gradient (:func:`fastrnn.training.clip_grad_norm`)
        before every step; None: no clipping.
    tbptt : int or None, default None
        None: full backpropagation through time. An int k: truncated BPTT
        (:class:`fastrnn.training.TruncatedBPTT` with ``k1 = k2 = k``): the
        gradient of each step's output flows back at most k steps, the tapes
        of at most 2k steps are held at once, and the optimizer steps once
        per minibatch. Costs one extra inference forward per minibatch.
    dtype : {"float64", "float32"}, default "float64"
        Parameter dtype; X (and a regressor's y) are converted to it.
    device : {"auto", "cpu", "cuda"}, default "auto"
    random_state : int, RandomState or None, default None
        Seeds the initialisation and the minibatch order: an int gives the
        same model, bit for bit, on every fit.
"""

_ATTRIBUTES = """
    model_ : fastrnn.Sequential
        ``[cell(n_features_in_, hidden_size, num_layers), Linear(hidden_size, {outputs})]``,
        time-major: it reads ``(T, B, n_features)`` and gives ``(T, B, {outputs})``,
        which the estimator pools. It can be saved with :func:`fastrnn.save`.
    n_features_in_ : int
        Features per time step (1 for 2-D X).
    loss_curve_ : list of float
        Mean training loss of each epoch.
    n_iter_ : int
        Epochs run.
"""


class RNNClassifier(ClassifierMixin, _RNNEstimator):
    __doc__ = """Sequence classifier: a recurrent network, pooled over time, softmax read-out.

    Trained with softmax cross-entropy (:func:`fastrnn.losses.softmax_cross_entropy`),
    one logit per class, also for two classes. Labels may be of any type
    ``numpy.unique`` sorts (ints, strings...): ``classes_`` holds them and
    the network sees their indices.
    """ + _PARAMETERS + """
    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        The sorted labels seen in ``fit``.""" + _ATTRIBUTES.format(outputs="n_classes") + """
    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.sklearn import RNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 8, 2))                  # 64 sequences of 8 steps, 2 features
    >>> y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    >>> clf = RNNClassifier(hidden_size=8, epochs=2, random_state=0).fit(X, y)
    >>> clf.classes_.tolist(), clf.predict_proba(X[:3]).shape
    (['down', 'up'], (3, 2))
    """

    def fit(self, X, y):
        """Train on sequences ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like, shape (n_samples, T, n_features) or (n_samples, T)
        y : array-like, shape (n_samples,)
            At least two distinct labels.

        Returns
        -------
        self
        """
        return self._fit(X, y, multi_output=False)

    def _targets(self, y, dtype):
        check_classification_targets(y)
        self.classes_, indices = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError("y must hold at least 2 classes to train a classifier, got 1 "
                             f"class: {self.classes_.tolist()[0]!r}")
        return indices.astype(np.int64), self.classes_.size

    @staticmethod
    def _loss(logits, targets):
        return losses.softmax_cross_entropy(logits, targets)

    def predict_proba(self, X):
        """Class probabilities, softmax of the pooled logits.

        Parameters
        ----------
        X : array-like, shape (n_samples, T, n_features) or (n_samples, T)

        Returns
        -------
        ndarray of the estimator's dtype, shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        logits = self._pooled_outputs(self._check_predict_X(X))
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable label of each sequence, shape (n_samples,)."""
        logits = self._pooled_outputs(self._check_predict_X(X))
        return self.classes_[np.argmax(logits, axis=1)]


class RNNRegressor(RegressorMixin, _RNNEstimator):
    __doc__ = """Sequence regressor: a recurrent network, pooled over time, linear read-out.

    Trained with mean squared error (:func:`fastrnn.losses.mse`) on ``y`` as
    given: scale targets far from unit size first (for example with
    ``sklearn.compose.TransformedTargetRegressor``).
    """ + _PARAMETERS + """
    Attributes
    ----------
    n_outputs_ : int
        Targets per sample (1 for 1-D y).""" + _ATTRIBUTES.format(outputs="n_outputs_") + """
    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.sklearn import RNNRegressor
    >>> X = np.random.default_rng(0).normal(size=(64, 8))   # 64 univariate sequences
    >>> reg = RNNRegressor(cell="gru", hidden_size=8, epochs=2, random_state=0)
    >>> reg.fit(X, X.mean(axis=1)).predict(X[:3]).shape
    (3,)
    """

    def fit(self, X, y):
        """Train on sequences ``X`` and real targets ``y``.

        Parameters
        ----------
        X : array-like, shape (n_samples, T, n_features) or (n_samples, T)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, multi_output=True)

    def _targets(self, y, dtype):
        self._single_output = y.ndim == 1
        targets = np.asarray(y, dtype=dtype).reshape(len(y), -1)
        self.n_outputs_ = targets.shape[1]
        return targets, self.n_outputs_

    @staticmethod
    def _loss(predictions, targets):
        return losses.mse(predictions, targets)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        """Predicted targets: shape (n_samples,) for 1-D y in fit, else (n_samples, n_outputs)."""
        predictions = self._pooled_outputs(self._check_predict_X(X))
        return predictions[:, 0] if self._single_output else predictions
