"""The run store (experiments/store/): atomic files, the run lock, the history schema,
provenance."""
import os
import signal
import subprocess
import sys

import pytest

from errors import UserError
from experiments.store import atomic
from experiments.store.atomic import (atomic_write_bytes, move_aside, read_json,
                                      remove_stale_temporaries, write_json)
from experiments.store.history import CURVES, history_problem, new_history
from experiments.store.lock import RunLocked, run_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "history.json")
    write_json(path, {"loss": [1.0]})

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(atomic.os, "replace", crash)
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


def test_temporary_file_of_a_killed_write_is_removed(tmp_path):
    # kill -9 of a process in the middle of an atomic write, after its temporary file is
    # written and before the rename.
    script = ("import os, signal\n"
              "from experiments.store import atomic\n"
              "atomic.os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL)\n"
              "atomic.write_json(%r, {'loss': [1.0, 2.0]})\n"
              % str(tmp_path / "history.json"))
    write_json(str(tmp_path / "history.json"), {"loss": [1.0]})
    (tmp_path / ".lock").write_text("")
    (tmp_path / "notes.tmp").write_text("not ours")
    killed = subprocess.run([sys.executable, "-c", script], cwd=REPO)
    assert killed.returncode == -signal.SIGKILL
    leftovers = [n for n in os.listdir(str(tmp_path)) if n.startswith(".history.json.")]
    assert len(leftovers) == 1
    assert remove_stale_temporaries(str(tmp_path)) == leftovers
    assert sorted(os.listdir(str(tmp_path))) == [".lock", "history.json", "notes.tmp"]
    assert read_json(str(tmp_path / "history.json")) == {"loss": [1.0]}


def test_history_schema_problems_are_named():
    good = dict(new_history(), loss=[1.0], acc=[0.5], val_loss=[1.1], val_acc=[0.4],
                lr=[0.1], epoch_time=[2.0])
    assert history_problem(good) is None
    assert history_problem([1]) == "a JSON list, not an object"
    assert history_problem(dict(good, status="done")).startswith("status 'done'")
    assert history_problem(dict(good, acc=["x"])) == "'acc' is not a list of numbers"
    assert history_problem(dict(good, acc=[])).startswith("curves of unequal lengths")
    assert history_problem(dict(good, diverged_epoch="3")).startswith("diverged_epoch")
    # The figures need four curves only; null stands for a missing value.
    four = {name: good[name] for name in ("loss", "acc", "val_loss", "val_acc", "status")}
    assert history_problem(four) == "'lr' is not a list of numbers"
    assert history_problem(dict(four, loss=[None]), curves=CURVES[:4]) is None


def test_provenance_without_theano_names_versions_and_threads():
    code = ("import json, sys; from experiments.store.rundir import provenance; "
            "print(json.dumps(provenance())); assert 'theano' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="3"))
    assert done.returncode == 0, done.stderr
    import json
    found = json.loads(done.stdout)
    assert found["versions"]["theano"] == "1.1.2" and found["versions"]["lasagne"] == "0.1"
    assert found["theano_flags"] == {} and found["threads"]["OMP_NUM_THREADS"] == "3"
    assert found["threads"]["cores"] >= 1


def test_move_aside_never_overwrites_a_file_moved_aside_before(tmp_path):
    path = str(tmp_path / "checkpoint.npz")
    moved = []
    for content in (b"first", b"second", b"third"):
        with open(path, "wb") as handle:
            handle.write(content)
        moved.append(move_aside(path, ".corrupt"))
    assert moved == [path + ".corrupt", path + ".corrupt.2", path + ".corrupt.3"]
    assert [open(name, "rb").read() for name in moved] == [b"first", b"second", b"third"]
    assert not os.path.exists(path)
