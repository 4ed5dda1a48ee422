"""Checkpoints (experiments/store/checkpoint.py): round trips, damage, identity, file modes."""
import copy
import os

import numpy as np
import pytest
import theano

from errors import UserError
from experiments.store.atomic import write_json
from experiments.store.checkpoint import load_checkpoint, save_checkpoint


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


# ---------------------------------------------------------------- damage as it happens

def saved_checkpoint(tmp_path):
    """A checkpoint file's bytes, the values and generator state it holds, and its path."""
    path = str(tmp_path / "checkpoint.npz")
    variables = make_variables(1)
    batch_rng = np.random.RandomState(5)
    save_checkpoint(path, variables, batch_rng, {"loss": [0.5], "status": "running"},
                    {"lr": 0.01})
    with open(path, "rb") as f:
        return f.read(), [v.get_value().copy() for v in variables], path


def test_truncated_checkpoint_is_refused_without_changes(tmp_path):
    payload, _, path = saved_checkpoint(tmp_path)
    with open(path, "wb") as f:
        f.write(payload[:len(payload) // 2])  # cut short, as a full disk or a crash can
    variables, rng = make_variables(2), np.random.RandomState(7)
    before = [v.get_value().copy() for v in variables]
    with pytest.raises(UserError, match="cannot read checkpoint %s: it is damaged" % path):
        load_checkpoint(path, variables, rng)
    for variable, value in zip(variables, before):
        np.testing.assert_array_equal(variable.get_value(), value)
    assert rng.randint(1000) == np.random.RandomState(7).randint(1000)


def test_flipped_bytes_are_refused_or_harmless(tmp_path):
    # A byte flipped anywhere: either the load is refused (CRC-32 of the members, zip
    # structure) or it restores exactly what was saved (a flip in a zip field nobody reads).
    payload, saved_values, path = saved_checkpoint(tmp_path)
    refused = 0
    for position in range(0, len(payload), 37):
        with open(path, "wb") as f:
            f.write(payload[:position] + bytes([payload[position] ^ 0x5A]) + payload[position + 1:])
        variables = make_variables(2)
        try:
            load_checkpoint(path, variables, np.random.RandomState(0))
        except UserError as exc:
            assert "cannot read checkpoint %s: it is damaged" % path in str(exc)
            refused += 1
        else:
            for variable, value in zip(variables, saved_values):
                np.testing.assert_array_equal(variable.get_value(), value)
    assert refused > 0.8 * len(range(0, len(payload), 37))


def test_checkpoint_of_another_identity_is_refused_before_changes(tmp_path):
    _, saved_values, path = saved_checkpoint(tmp_path)
    seen = []

    def check(identity):
        seen.append(identity)
        if identity != {"lr": 0.001}:
            raise UserError("another run")

    variables = make_variables(2)
    before = [v.get_value().copy() for v in variables]
    with pytest.raises(UserError, match="another run"):
        load_checkpoint(path, variables, np.random.RandomState(0), check_identity=check)
    assert seen == [{"lr": 0.01}]
    for variable, value in zip(variables, before):
        np.testing.assert_array_equal(variable.get_value(), value)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(str(tmp_path / "history.json"), {"loss": []})
        save_checkpoint(str(tmp_path / "checkpoint.npz"), make_variables(1),
                        np.random.RandomState(0), {})
    finally:
        os.umask(old)
    for name in ("history.json", "checkpoint.npz"):
        assert os.stat(str(tmp_path / name)).st_mode & 0o777 == mode, name


#: Loads the checkpoint into the test's variables in a fresh process; prints the error and
#: the process's own peak resident MiB (VmHWM, not the forking pytest's).
_LOAD_AND_MEASURE = """
import sys
import numpy as np
import compat  # noqa: F401
from errors import UserError
from experiments.store.checkpoint import load_checkpoint
from test_checkpoint import make_variables
try:
    load_checkpoint(sys.argv[1], make_variables(2), np.random.RandomState(7))
    print("loaded")
except UserError as error:
    print(error)
with open("/proc/self/status") as status:
    print([int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:")][0])
"""


def test_a_checkpoint_whose_arrays_inflate_to_gigabytes_is_refused_unread(tmp_path):
    import subprocess
    import sys
    import zipfile
    _, _, path = saved_checkpoint(tmp_path)
    bomb = str(tmp_path / "bomb.npz")
    huge = 768 << 18  # float32 values: 768 MiB
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bomb, "w") as target:
        for member in source.infolist():
            if member.filename != "value_0.npy":
                target.writestr(member, source.read(member))
                continue
            # A deflated member, as a hand-made file can have: its header, then zeros.
            deflated = zipfile.ZipInfo("value_0.npy")
            deflated.compress_type = zipfile.ZIP_DEFLATED
            with target.open(deflated, "w", force_zip64=True) as stream:
                np.lib.format.write_array_header_1_0(
                    stream, {"descr": "<f4", "fortran_order": False, "shape": (huge,)})
                for _ in range(768):
                    stream.write(bytes(1 << 20))
    assert os.path.getsize(bomb) < 4 << 20
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(__file__)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, "-c", _LOAD_AND_MEASURE, bomb], capture_output=True,
                          text=True, timeout=300, env=env)
    message, peak_mib = done.stdout.splitlines()
    assert message.startswith("cannot read checkpoint %s: it is damaged" % bomb), done.stderr
    assert "value_0.npy inflates from" in message
    assert int(peak_mib) < 300, peak_mib  # the interpreter with Theano: about 100 MiB
