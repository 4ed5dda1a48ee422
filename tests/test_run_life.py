"""A run's life (experiments/training/life.py): every file of a run proves its identity.

Each fault is produced for real: a history.json copied from another run's directory, a
history cut back to an earlier epoch and marked complete, the data's labels changed
between two commands, a setup's definition changed between two commands.
"""
import dataclasses
import json
import os
import shutil
import types

import pytest

from data.datasets import content_digest
from errors import UserError
from experiments.records import setups
from experiments.records.config import RunConfig
from experiments.store.atomic import write_error_log
from experiments.training.life import RunOutcome, open_run
from test_training import read, run_tiny, tiny_config, tiny_dataset


def write(run_dir, name, value):
    with open(os.path.join(run_dir, name), "w") as f:
        json.dump(value, f)


def test_outcome_is_a_record_that_compares_without_compile_time():
    outcome = RunOutcome("complete", "R", 3, 3, compile_seconds=1.5)
    assert outcome == RunOutcome("complete", "R", 3, 3)
    assert dataclasses.replace(outcome, epochs_done=2) != outcome
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.status = "busy"


def test_new_histories_name_their_run(tmp_path):
    config = tiny_config()
    run_tiny(tmp_path, config, stop_after=1)
    history = read(config.run_dir(str(tmp_path)), "history.json")
    assert RunConfig.from_dict(history["identity"]) == config


@pytest.mark.parametrize("legacy", [False, True], ids=["named", "from before names"])
def test_a_history_copied_from_another_run_is_replaced_by_the_checkpoints(tmp_path, legacy):
    mine, theirs = tiny_config(lr=0.001, epochs=2), tiny_config(lr=0.01, epochs=2)
    run_tiny(tmp_path, mine, stop_after=1)
    run_tiny(tmp_path, theirs)
    own = read(mine.run_dir(str(tmp_path)), "history.json")
    copied = read(theirs.run_dir(str(tmp_path)), "history.json")
    if legacy:
        del copied["identity"]
    write(mine.run_dir(str(tmp_path)), "history.json", copied)  # says complete, lr 0.01's

    lines = []
    with open_run(mine, str(tmp_path), say=lines.append) as life:
        assert life.outcome is None  # not "complete": the checkpoint's single epoch counts
        assert life.history["loss"] == own["loss"] and life.history["status"] == "running"
    assert "written by another run" in lines[0] and "rebuilt it from" in lines[0]
    assert read(mine.run_dir(str(tmp_path)), "history.json")["loss"] == own["loss"]
    outcome = run_tiny(tmp_path, mine)
    assert outcome.status == "complete" and outcome.epochs_trained == 1


def test_a_history_from_another_run_without_a_checkpoint_is_refused(tmp_path):
    mine, theirs = tiny_config(lr=0.001, epochs=2), tiny_config(lr=0.01, epochs=2)
    run_tiny(tmp_path, theirs)
    os.makedirs(mine.run_dir(str(tmp_path)))
    shutil.copy(os.path.join(theirs.run_dir(str(tmp_path)), "history.json"),
                mine.run_dir(str(tmp_path)))
    with pytest.raises(UserError, match="written by another run"):
        run_tiny(tmp_path, mine)


def test_a_history_complete_with_fewer_epochs_than_the_checkpoint_is_repaired(tmp_path):
    config = tiny_config(epochs=4)
    run_dir = config.run_dir(str(tmp_path))
    run_tiny(tmp_path, config, stop_after=2)
    early = read(run_dir, "history.json")
    run_tiny(tmp_path, config)
    whole = read(run_dir, "history.json")
    write(run_dir, "history.json", dict(early, status="complete"))  # 2 of 4, "complete"

    lines = []
    with open_run(config, str(tmp_path), say=lines.append) as life:
        outcome = life.outcome
    assert outcome == RunOutcome("complete", run_dir, 4, 0)
    assert "says complete after 2 of 4 epochs; rebuilt it from" in lines[0]
    assert read(run_dir, "history.json") == whole


def test_a_history_complete_early_without_a_checkpoint_is_refused(tmp_path):
    config = tiny_config(epochs=4)
    run_dir = config.run_dir(str(tmp_path))
    run_tiny(tmp_path, config, stop_after=2)
    history = read(run_dir, "history.json")
    os.remove(os.path.join(run_dir, "checkpoint.npz"))
    write(run_dir, "history.json", dict(history, status="complete"))
    with pytest.raises(UserError, match="complete after 2 of 4 epochs"):
        run_tiny(tmp_path, config)


def sourced(dataset):
    """The tiny data set with the source record load_dataset gives real ones."""
    arrays = (dataset.train_x, dataset.train_y, dataset.val_x, dataset.val_y)
    return types.SimpleNamespace(**dict(vars(dataset), source={
        "content": content_digest(arrays), "files": "other"}))


def test_resuming_on_other_data_is_refused_naming_both_digests(tmp_path):
    config = tiny_config()
    original = sourced(tiny_dataset())
    from experiments.training.alone import train_run
    from test_training import tiny_logreg
    train_run(config, str(tmp_path), dataset=original, build_model=tiny_logreg,
              progress=False, stop_after=1)
    relabelled = tiny_dataset()
    relabelled.train_y = (relabelled.train_y + 1) % relabelled.num_classes
    relabelled = sourced(relabelled)
    with pytest.raises(UserError) as error:
        train_run(config, str(tmp_path), dataset=relabelled, build_model=tiny_logreg,
                  progress=False)
    message = str(error.value)
    assert original.source["content"] in message and relabelled.source["content"] in message
    assert len(read(config.run_dir(str(tmp_path)), "history.json")["loss"]) == 1
    # The data it started with still resumes it.
    assert train_run(config, str(tmp_path), dataset=original, build_model=tiny_logreg,
                     progress=False).status == "complete"


def test_resuming_under_a_changed_setup_definition_is_refused(tmp_path, monkeypatch):
    config = tiny_config()
    run_tiny(tmp_path, config, stop_after=1)
    saved = read(config.run_dir(str(tmp_path)), "config.json")
    assert saved["setup_definition"] == setups.get("logreg").definition()
    assert saved["setup_definition"]["flip_lr"] is False
    # What a plug-in edited between two commands does: logreg, now with flips.
    flipped = dataclasses.replace(setups.get("logreg"), flip_lr=True)
    monkeypatch.setitem(setups._REGISTRY, "logreg", flipped)
    with pytest.raises(UserError, match=r"another definition of setup logreg \(flip_lr"):
        run_tiny(tmp_path, config)


def test_the_figures_skip_a_history_copied_from_another_run(tmp_path):
    from plots.verdict.results import find_runs
    mine, theirs = tiny_config(lr=0.001, epochs=2), tiny_config(lr=0.01, epochs=2)
    run_tiny(tmp_path, mine)
    run_tiny(tmp_path, theirs)
    shutil.copy(os.path.join(theirs.run_dir(str(tmp_path)), "history.json"),
                mine.run_dir(str(tmp_path)))
    runs, problems = find_runs(str(tmp_path))
    assert [run.config for run in runs] == [theirs]
    assert len(problems) == 1 and "written by another run" in str(problems[0])


def test_a_try_that_ends_well_removes_an_earlier_tries_error_log(tmp_path):
    config = tiny_config(epochs=2)
    run_tiny(tmp_path, config, stop_after=1)
    log = write_error_log(config.run_dir(str(tmp_path)), "Traceback: an earlier try\n")
    assert os.path.exists(log)
    run_tiny(tmp_path, config)  # as run.py trains it
    assert not os.path.exists(log)


def test_a_resume_keeps_what_history_json_has_beside_this_versions_keys(tmp_path):
    # A newer version's (or a user's) keys: a note, and a curve this version does not record.
    config = tiny_config(epochs=3)
    run_dir = config.run_dir(str(tmp_path))
    run_tiny(tmp_path, config, stop_after=1)
    history = read(run_dir, "history.json")
    write(run_dir, "history.json", dict(history, note="seed sweep 4", sharpness=[0.25]))
    outcome = run_tiny(tmp_path, config)
    assert outcome.status == "complete" and outcome.epochs_trained == 2
    resumed = read(run_dir, "history.json")
    assert resumed["note"] == "seed sweep 4"
    assert resumed["sharpness"] == [0.25, None, None]  # recorded as missing since
    assert resumed["loss"][:1] == history["loss"] and len(resumed["loss"]) == 3


def test_a_config_with_a_field_this_version_does_not_know_is_not_resumed(tmp_path):
    # A newer version's field changes what the run is: never resumed (nor marked complete)
    # as if it were not there, and the figures skip it saying why.
    config = tiny_config(epochs=2)
    run_dir = config.run_dir(str(tmp_path))
    run_tiny(tmp_path, config, stop_after=1)
    write(run_dir, "config.json", dict(read(run_dir, "config.json"), weight_decay=0.0005))
    with pytest.raises(UserError, match=r"config.json has a field weight_decay, which this "
                                        r"version does not know \(written by a newer version\?\); "
                                        r"resume it with that version"):
        run_tiny(tmp_path, config)
    assert read(run_dir, "history.json")["status"] == "running"
    assert len(read(run_dir, "history.json")["loss"]) == 1
    from plots.verdict.results import find_runs
    runs, problems = find_runs(str(tmp_path))
    assert runs == [] and "weight_decay" in problems[0].reason


def test_what_a_config_json_records_beside_the_fields_is_declared(tmp_path):
    from experiments.records.config import RECORDED
    config = tiny_config(epochs=1)
    run_tiny(tmp_path, config)
    saved = read(config.run_dir(str(tmp_path)), "config.json")
    assert set(saved) - set(config.to_dict()) == set(RECORDED)


def nested(depth):
    """JSON text of arrays nested ``depth`` deep: valid JSON no reader of ours can descend."""
    return "[" * depth + "]" * depth


def test_files_nested_100000_deep_are_refused_as_not_the_projects(tmp_path):
    from plots.verdict.results import find_runs, load_reference
    config = tiny_config(epochs=2)
    run_dir = config.run_dir(str(tmp_path))
    run_tiny(tmp_path, config, stop_after=1)
    whole = read(run_dir, "history.json")
    with open(os.path.join(run_dir, "history.json"), "w") as f:
        f.write(nested(100000))
    runs, problems = find_runs(str(tmp_path))  # the figures skip it, saying why
    assert runs == [] and "JSON nested deeper than" in problems[0].reason
    lines = []
    with open_run(config, str(tmp_path), say=lines.append) as life:  # resuming rebuilds it
        assert life.history["loss"] == whole["loss"]
    assert "is not a file of this project (JSON nested deeper than" in lines[0]
    assert "rebuilt it from" in lines[0]
    reference = tmp_path / "original.json"
    reference.write_text(nested(100000))
    assert load_reference(str(reference))[0] == {}
    assert "JSON nested deeper than" in load_reference(str(reference))[1][0].reason
