"""Checkpoints, atomic writes and the run lock (experiments/checkpoint.py)."""
import copy
import os

import numpy as np
import pytest
import theano

from errors import UserError
from experiments import checkpoint
from experiments.checkpoint import (RunLocked, atomic_write_bytes, load_checkpoint, read_json,
                                    run_lock, save_checkpoint, write_json)


def make_variables(seed):
    rng = np.random.RandomState(seed)
    return [
        theano.shared(rng.randn(3, 4).astype("float32"), name="W"),
        theano.shared(rng.randn(1, 4).astype("float32"), name="b", broadcastable=(True, False)),
        theano.shared(np.float32(seed), name="t"),
        # unnamed, integer-valued: like an MRG generator's state
        theano.shared(rng.randint(0, 2 ** 31, size=(6, 6)).astype("int32")),
    ]


def test_round_trip_restores_values_and_generator(tmp_path):
    path = str(tmp_path / "checkpoint.npz")
    variables = make_variables(1)
    saved_values = [v.get_value().copy() for v in variables]
    batch_rng = np.random.RandomState(123)
    batch_rng.randn()  # leaves a cached Gaussian in the state: it must survive too
    expected_rng = copy.deepcopy(batch_rng)
    history = {"loss": [0.5, 0.25], "status": "running", "diverged_epoch": None}
    save_checkpoint(path, variables, batch_rng, history)

    for variable, other in zip(variables, make_variables(2)):
        variable.set_value(other.get_value())
    batch_rng.rand(1000)
    assert load_checkpoint(path, variables, batch_rng) == history
    for variable, value in zip(variables, saved_values):
        np.testing.assert_array_equal(variable.get_value(), value)
        assert variable.get_value().dtype == value.dtype
    np.testing.assert_array_equal(batch_rng.randn(5), expected_rng.randn(5))
    np.testing.assert_array_equal(batch_rng.permutation(50), expected_rng.permutation(50))


def test_mismatched_model_is_refused_without_changes(tmp_path):
    path = str(tmp_path / "checkpoint.npz")
    save_checkpoint(path, make_variables(1), np.random.RandomState(0), {})
    other = make_variables(2)
    other[0] = theano.shared(np.zeros((3, 5), dtype="float32"), name="W")
    before = [v.get_value().copy() for v in other]
    rng = np.random.RandomState(7)
    with pytest.raises(UserError, match="does not match"):
        load_checkpoint(path, other, rng)
    for variable, value in zip(other, before):
        np.testing.assert_array_equal(variable.get_value(), value)
    assert rng.randint(1000) == np.random.RandomState(7).randint(1000)
    with pytest.raises(UserError, match="does not match"):
        load_checkpoint(path, make_variables(1)[:3], rng)


def test_unreadable_checkpoint_is_a_user_error(tmp_path):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_checkpoint(str(path), make_variables(1), np.random.RandomState(0))


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "history.json")
    write_json(path, {"loss": [1.0]})

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        write_json(path, {"loss": [1.0, 2.0]})
    monkeypatch.undo()
    assert read_json(path) == {"loss": [1.0]}
    assert os.listdir(str(tmp_path)) == ["history.json"]  # no temporary file left behind
    atomic_write_bytes(path, b"[]")
    assert read_json(path) == []


def test_read_json_missing_and_invalid(tmp_path):
    assert read_json(str(tmp_path / "absent.json")) is None
    (tmp_path / "bad.json").write_text("{truncated")
    with pytest.raises(UserError, match="not valid JSON"):
        read_json(str(tmp_path / "bad.json"))


def test_run_lock_is_exclusive_and_released(tmp_path):
    run_dir = str(tmp_path)
    with run_lock(run_dir):
        # flock locks belong to the open file: a second open conflicts even in this process.
        with pytest.raises(RunLocked):
            with run_lock(run_dir):
                pass
    with run_lock(run_dir):
        pass
