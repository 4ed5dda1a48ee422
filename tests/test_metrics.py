"""The compiled functions' named outputs (experiments/records/metrics.py): each against float64
NumPy, and a curve declared once reaching every history, old ones included."""
import types

import numpy as np
import pytest
import theano
import theano.tensor as T

from experiments.records import metrics
from experiments.records.config import run_seeds
from experiments.store.history import CURVES, history_problem, new_history
from experiments.training.alone import compile_functions
from test_training import (numpy_losses, read, run_tiny, tiny_config, tiny_dataset,
                           tiny_logreg)


def test_loss_expressions_match_numpy():
    # Rows with exact 0 and 1 exercise the clipping.
    probabilities = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5],
                              [0.6, 0.1, 0.3], [0.0, 0.0, 1.0]], dtype="float32")
    targets = np.array([0, 2, 2, 1, 0], dtype="int32")
    categorical, binary, accuracy = numpy_losses(probabilities, targets, 3)
    p, y = T.matrix("p"), T.ivector("y")
    for loss, reference in (("categorical", categorical), ("binary", binary)):
        graph = metrics.MinibatchGraph(p, y, types.SimpleNamespace(loss=loss), 3, ())
        values = theano.function([p, y], metrics.outputs(graph))(probabilities, targets)
        named = dict(zip(metrics.train_names(), values))
        assert float(named["loss"]) == pytest.approx(reference, rel=1e-5)
        assert float(named["acc"]) == pytest.approx(accuracy)


def _gradient_norm(graph):
    loss = metrics.METRICS[0].expression(graph)
    return T.sqrt(sum(T.sum(T.sqr(g)) for g in T.grad(loss, list(graph.params))))


#: The example of the module docstring: a curve is one declaration.
GRAD_NORM = metrics.Metric("grad_norm", _gradient_norm, validation=False)


def numpy_gradient_norm(W, b, x, y):
    """The norm of the mean categorical cross-entropy's gradient of a softmax regression."""
    x = x.reshape(len(x), -1).astype(np.float64)
    z = x @ W + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    delta = (p - np.eye(W.shape[1])[y]) / len(x)
    return np.sqrt(np.sum((x.T @ delta) ** 2) + np.sum(delta.sum(axis=0) ** 2))


def test_a_declared_metric_is_a_named_output(monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", metrics.METRICS + (GRAD_NORM,))
    assert metrics.train_names() == ("loss", "acc", "grad_norm")
    assert metrics.val_names() == ("loss", "acc")
    config, dataset = tiny_config(), tiny_dataset()
    import lasagne
    lasagne.random.set_rng(np.random.RandomState(run_seeds(config)[0]))
    network = tiny_logreg(dataset.input_shape, dataset.num_classes)
    W, b = (p.get_value().astype(np.float64) for p in network.get_params())
    train_fn, val_fn, _ = compile_functions(network, config, dataset.num_classes)
    x, y = dataset.train_x[:32], dataset.train_y[:32]
    values = dict(zip(metrics.train_names(), train_fn(x, y)))
    assert float(values["grad_norm"]) == pytest.approx(numpy_gradient_norm(W, b, x, y),
                                                       rel=1e-5)
    assert len(val_fn(x, y)) == 2


def test_a_declared_curve_is_recorded_and_older_histories_gain_it(tmp_path, monkeypatch):
    config = tiny_config()
    run_tiny(tmp_path, config, stop_after=2)  # a history from before the declaration
    run_dir = config.run_dir(str(tmp_path))
    assert "grad_norm" not in read(run_dir, "history.json")

    monkeypatch.setattr(metrics, "METRICS", metrics.METRICS + (GRAD_NORM,))
    outcome = run_tiny(tmp_path, config)  # resumed: records it from its next epoch
    assert outcome.status == "complete" and outcome.epochs_trained == 1
    history = read(run_dir, "history.json")
    assert history["grad_norm"][:2] == [None, None]
    assert history["grad_norm"][2] > 0 and "val_grad_norm" not in history
    assert history_problem(history) is None

    fresh = tiny_config(run=1)
    run_tiny(tmp_path, fresh)
    history = read(fresh.run_dir(str(tmp_path)), "history.json")
    assert list(history)[:7] == ["loss", "acc", "grad_norm", "val_loss", "val_acc", "lr",
                                 "epoch_time"]
    assert all(value > 0 for value in history["grad_norm"]) and len(history["grad_norm"]) == 3


def test_a_curve_of_another_length_is_damage():
    history = new_history()
    for name in CURVES:
        history[name].append(0.5)
    assert history_problem(history) is None
    history["grad_norm"] = [1.0, 2.0]
    assert "unequal lengths" in history_problem(history)
