"""The curves (experiments/records/curves.py) and the compiled functions' named outputs
(experiments/records/metrics.py): each against float64 NumPy, and a curve declared once
reaching every history, old ones included, the log line, the report and its CSV."""
import csv
import types

import numpy as np
import pytest
import theano
import theano.tensor as T

from errors import UserError
from experiments.records import curves, metrics
from experiments.records.config import run_seeds
from experiments.store.history import CURVES, history_problem, new_history
from experiments.training.alone import compile_functions, train_run
from plots import make_figures
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
        named = dict(zip(curves.train_names(), values))
        assert float(named["loss"]) == pytest.approx(reference, rel=1e-5)
        assert float(named["acc"]) == pytest.approx(accuracy)


def _gradient_norm(graph):
    loss = metrics.EXPRESSIONS["loss"](graph)
    return T.sqrt(sum(T.sum(T.sqr(g)) for g in T.grad(loss, list(graph.params))))


#: The example of experiments/records/curves.py's docstring: a curve is one declaration.
GRAD_NORM = curves.Curve("grad_norm", lower_is_better=True, validation=False,
                         expression=_gradient_norm)


@pytest.fixture
def declare(monkeypatch):
    """``declare(curve)`` registers a curve for one test (the registry is restored after)."""
    registry = curves._CURVES
    monkeypatch.setattr(registry, "entries", dict(registry.entries))
    monkeypatch.setattr(registry, "origins", dict(registry.origins))
    return curves.register


def numpy_gradient_norm(W, b, x, y):
    """The norm of the mean categorical cross-entropy's gradient of a softmax regression."""
    x = x.reshape(len(x), -1).astype(np.float64)
    z = x @ W + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    delta = (p - np.eye(W.shape[1])[y]) / len(x)
    return np.sqrt(np.sum((x.T @ delta) ** 2) + np.sum(delta.sum(axis=0) ** 2))


def test_a_declared_curve_is_a_named_output(declare):
    declare(GRAD_NORM)
    assert curves.train_names() == ("loss", "acc", "grad_norm")
    assert curves.val_names() == ("loss", "acc")
    config, dataset = tiny_config(), tiny_dataset()
    import lasagne
    lasagne.random.set_rng(np.random.RandomState(run_seeds(config)[0]))
    network = tiny_logreg(dataset.input_shape, dataset.num_classes)
    W, b = (p.get_value().astype(np.float64) for p in network.get_params())
    train_fn, val_fn, _ = compile_functions(network, config, dataset.num_classes)
    x, y = dataset.train_x[:32], dataset.train_y[:32]
    values = dict(zip(curves.train_names(), train_fn(x, y)))
    assert float(values["grad_norm"]) == pytest.approx(numpy_gradient_norm(W, b, x, y),
                                                       rel=1e-5)
    assert len(val_fn(x, y)) == 2


def test_a_declared_curve_is_recorded_and_older_histories_gain_it(tmp_path, declare):
    config = tiny_config()
    run_tiny(tmp_path, config, stop_after=2)  # a history from before the declaration
    run_dir = config.run_dir(str(tmp_path))
    assert "grad_norm" not in read(run_dir, "history.json")

    declare(GRAD_NORM)
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


def test_a_declared_curve_reaches_the_log_line_the_report_and_the_csv(tmp_path, declare,
                                                                       capsys):
    run_tiny(tmp_path, tiny_config(run=2))  # finished before the declaration: no grad_norm
    declare(GRAD_NORM)
    histories = []
    for run in (0, 1):
        config = tiny_config(run=run)
        train_run(config, str(tmp_path), dataset=tiny_dataset(), build_model=tiny_logreg)
        histories.append(read(config.run_dir(str(tmp_path)), "history.json"))
    lines = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in lines if " epoch 3/3: " in line]
    assert len(epoch_lines) == 2 and all(
        "acc" in line and " grad_norm %.4f val_loss " % history["grad_norm"][-1] in line
        for line, history in zip(epoch_lines, histories)), lines

    out = tmp_path / "out"
    assert make_figures.main(["--results-dir", str(tmp_path), "--out", str(out)]) == 0
    finals = [history["grad_norm"][-1] for history in histories]
    bests = [min(history["grad_norm"]) for history in histories]
    with open(out / "report.csv") as stream:
        rows = {row["measure"]: row for row in csv.DictReader(stream)}
    for measure, values in (("final_train_grad_norm", finals), ("best_train_grad_norm", bests)):
        row = rows[measure]
        # Over the two runs that recorded it; the original runs lack it: nothing to compare.
        assert (row["n"], row["original_n"], row["original_mean"]) == ("2", "0", "")
        assert float(row["mean"]) == pytest.approx(np.mean(values), rel=1e-12)
        assert float(row["std"]) == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    assert rows["final_val_loss"]["n"] == "3"  # the older run is counted, not diverged
    report = (out / "REPORT.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| optimizer | lr"))
    assert header.endswith("| final training loss | final training grad norm | "
                           "best training grad norm | verdict |"), header
    row = next(line for line in report.splitlines() if line.startswith("| amsgrad | 0.01"))
    assert "| %.4f (%.4f) | %.4f (%.4f) |" % (np.mean(finals), np.std(finals, ddof=1),
                                              np.mean(bests), np.std(bests, ddof=1)) in row
    assert "Curves the original runs lack, `grad_norm` (declared in" in report


@pytest.mark.parametrize("curve, message", [
    (curves.Curve("val_x", True, expression=_gradient_norm), "validation curves'"),
    (curves.Curve("x", True, expression=_gradient_norm, original=True), "the original runs"),
    (curves.Curve("x", True), "give it an expression"),
    (curves.Curve("x", True, expression=_gradient_norm, val_measures=("last",)),
     "a measure is one of final, best"),
    (curves.Curve("status", True, expression=_gradient_norm), "keeps for itself"),
    (curves.Curve("loss", True, expression=_gradient_norm), "registered twice"),
])
def test_a_curve_that_cannot_be_stored_or_reported_is_refused(declare, curve, message):
    with pytest.raises(UserError, match=message):
        declare(curve)
    assert curves.history_names() == CURVES
