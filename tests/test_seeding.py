"""How runs draw their initial weights and data order (experiments/records/config.py run_seeds):
independent draws by default, the same on every machine; common random numbers on request;
the choice part of a run's identity."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from errors import UserError
from experiments.records.config import RunConfig, run_seeds
from experiments.store.rundir import check_run_dir

CELLS = [dict(optimizer=optimizer, lr=lr, beta2=beta2, bias_correction=correction)
         for optimizer in ("adam", "amsgrad") for lr in (0.01, 0.001, 0.0001)
         for beta2 in (0.99, 0.999) for correction in (True, False)]


def config(seeding="independent", run=0, **cell):
    cell = cell or CELLS[0]
    return RunConfig(setup="logreg", run=run, seeding=seeding, **cell)


def seeds(config):
    return tuple(tuple(int(word) for word in seed) for seed in run_seeds(config))


def expected_independent(config):
    """The seeds as the docs define them, computed here from scratch."""
    experiment = {"setup": config.setup, "optimizer": config.optimizer, "lr": config.lr,
                  "beta2": config.beta2, "bias_correction": config.bias_correction}
    digest = hashlib.sha256(json.dumps(experiment, sort_keys=True).encode()).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 32, 4)]
    model, batch = np.random.SeedSequence([config.seed, config.run] + words).spawn(2)
    return tuple(tuple(int(w) for w in s.generate_state(4)) for s in (model, batch))


def test_every_run_of_every_cell_is_its_own_draw_by_default():
    drawn = {seeds(config(run=run, **cell)) for cell in CELLS for run in range(5)}
    assert len(drawn) == len(CELLS) * 5
    assert seeds(config(**CELLS[5])) == expected_independent(config(**CELLS[5]))
    assert seeds(config(run=3, **CELLS[7])) == expected_independent(config(run=3, **CELLS[7]))


def test_common_random_numbers_share_run_ks_draw_across_cells():
    for run in range(3):
        drawn = {seeds(config("common", run, **cell)) for cell in CELLS}
        old = np.random.SeedSequence([0, run]).spawn(2)
        assert drawn == {tuple(tuple(int(w) for w in s.generate_state(4)) for s in old)}


def test_the_draws_do_not_depend_on_the_process_or_its_hash_seed():
    code = ("from experiments.records.config import RunConfig, run_seeds; "
            "print([list(map(int, s)) for s"
            " in run_seeds(RunConfig(setup='cifarnet', optimizer='adam', lr=0.01, beta2=0.999,"
            " bias_correction=False, run=2))])")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env=dict(os.environ, PYTHONHASHSEED=hash_seed)).stdout
               for hash_seed in ("1", "2")}
    here = [list(seed) for seed in seeds(RunConfig(setup="cifarnet", optimizer="adam", lr=0.01,
                                                   beta2=0.999, bias_correction=False, run=2))]
    assert outputs == {"%s\n" % here}


def test_seeding_names_the_directory_and_old_configs_read_as_common(tmp_path):
    common = config("common")
    assert common.run_dir("R").endswith("bc=on_seeding=common/run=0")
    assert config().run_dir("R").endswith("bc=on/run=0")
    old = {k: v for k, v in config().to_dict().items() if k != "seeding"}
    assert RunConfig.from_dict(old) == common
    assert RunConfig.from_dict(config().to_dict()) == config()


def test_an_old_common_run_never_continues_as_an_independent_one(tmp_path):
    new = config()
    os.makedirs(new.run_dir(str(tmp_path)))
    old = {k: v for k, v in new.to_dict().items() if k != "seeding"}
    with open(os.path.join(new.run_dir(str(tmp_path)), "config.json"), "w") as f:
        json.dump(old, f)
    with pytest.raises(UserError, match="seeding='common' there, 'independent' here.*rename "
                                        "its directory to .*_seeding=common"):
        check_run_dir(new, str(tmp_path))


def test_a_bad_seeding_is_refused():
    with pytest.raises(UserError, match="seeding must be one of independent, common"):
        config("shared")
