"""The machine a run was trained on (experiments/store/machine.py, and record_machine of
experiments/store/rundir.py).

Every recorded value is compared with an independent reading: ``/proc/cpuinfo`` parsed
here with regular expressions, Theano's BLAS library found through ``ldconfig`` and asked
for its core here, ``OPENBLAS_CORETYPE`` set in a real second process.  Runs are trained
for real (the tiny setup of test_grid.py, through ``experiments/run.py``) and resumed in
other processes: on another OpenBLAS core, on the JAX backend.
"""
import ctypes
import json
import os
import re
import subprocess
import sys

import pytest

from experiments.store import machine
from experiments.store.atomic import read_json, write_json
from experiments.store.rundir import CONFIG_FILE, describe_machines, record_machine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")
TINY = ["tiny", "--optimizer", "adam", "--lr", "0.01", "--beta2", "0.99",
        "--bias-correction", "off", "--runs", "1", "--epochs", "3"]
linux_only = pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="reads /proc")


def cpuinfo_by_regex():
    """The first processor's model name and flags, read without experiments.store.machine."""
    with open("/proc/cpuinfo") as f:
        first = f.read().split("\n\n")[0]
    model = re.search(r"^model name\s*:\s*(.*?)\s*$", first, re.M).group(1)
    flags = re.search(r"^flags\s*:(.*)$", first, re.M).group(1).split()
    return model, flags


def system_openblas():
    """The file libopenblas.so.0 is in ``ldconfig``'s cache, links resolved; None if absent."""
    listing = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    found = re.search(r"^\s*libopenblas\.so\.0 \(libc6,x86-64\) => (\S+)$", listing, re.M)
    return found and os.path.realpath(found.group(1))


def corename(path):
    library = ctypes.CDLL(path)
    library.openblas_get_corename.restype = ctypes.c_char_p
    return library.openblas_get_corename().decode()


def environment(**variables):
    """This process's environment with the tiny setup, OpenBLAS choosing its core by CPU
    unless ``variables`` set ``OPENBLAS_CORETYPE``."""
    env = {name: value for name, value in os.environ.items() if name != "OPENBLAS_CORETYPE"}
    env.update(AMSGRAD_SETUPS="test_grid", **variables)
    env["PYTHONPATH"] = os.pathsep.join([TESTS, REPO] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def python(code, **variables):
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment(**variables),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def train(results, *options, **variables):
    done = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "run.py")] + TINY +
                          ["--results-dir", str(results)] + list(options), cwd=REPO,
                          env=environment(**variables), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = os.path.join(str(results), "tiny", "adam_lr=0.01_b2=0.99_bc=off", "run=0")
    with open(os.path.join(run_dir, CONFIG_FILE)) as f:
        return json.load(f), run_dir


#: Theano compiles a matrix product (its C code loads the BLAS of blas__ldflags), then
#: prints the machine and the product's bytes.
PRODUCT = """
import json, compat, numpy as np, theano, theano.tensor as T
from experiments.store import machine
x, y = T.matrix(), T.matrix()
rng = np.random.RandomState(0)
out = theano.function([x, y], T.dot(x, y))(rng.randn(300, 500).astype("float32"),
                                           rng.randn(500, 200).astype("float32"))
print(json.dumps({"machine": machine.describe_machine("c"), "product": out.tobytes().hex()}))
"""


@linux_only
def test_cpu_record_matches_proc_cpuinfo():
    model, flags = cpuinfo_by_regex()
    cpu = machine.describe_machine("c")["cpu"]
    assert cpu["model"] == model
    assert cpu["isa"] == [flag for flag in machine.ISA_FLAGS if flag in flags]
    assert ("avx2" in cpu["isa"]) == ("avx2" in flags) and ("fma" in cpu["isa"]) == ("fma" in flags)


@linux_only
def test_theanos_blas_and_its_core_are_the_ones_the_library_reports():
    expected = system_openblas()
    if expected is None:
        pytest.skip("no system libopenblas.so.0")
    seen = json.loads(python(PRODUCT))["machine"]
    assert seen["theano_blas"] == expected
    entry = [e for e in seen["blas"] if e["file"] == expected]
    assert len(entry) == 1 and entry[0]["core"] == corename(expected)
    assert entry[0]["version"] in os.path.basename(expected)  # libopenblasp-r0.3.21.so
    assert seen["openblas_coretype"] is None
    # NumPy's own OpenBLAS is listed too, with the core it reports itself.
    import numpy  # noqa: F401  (loaded: its library is mapped)
    numpy_blas = [e for e in machine.blas_libraries() if "numpy" in e["file"]]
    for e in numpy_blas:
        library = ctypes.CDLL(e["file"])
        name = "openblas_get_corename64_" if hasattr(library, "openblas_get_corename64_") \
            else "openblas_get_corename"
        getattr(library, name).restype = ctypes.c_char_p
        assert e["core"] == getattr(library, name)().decode()


@linux_only
def test_openblas_coretype_changes_the_recorded_core_and_the_arithmetic():
    if system_openblas() is None:
        pytest.skip("no system libopenblas.so.0")
    default = json.loads(python(PRODUCT))
    cores = {default["machine"]["blas"][0]["core"]}
    for coretype in ("Zen", "Haswell"):
        other = json.loads(python(PRODUCT, OPENBLAS_CORETYPE=coretype))
        blas = [e for e in other["machine"]["blas"] if e["file"] == other["machine"]["theano_blas"]]
        assert blas[0]["core"] == coretype and other["machine"]["openblas_coretype"] == coretype
        cores.add(coretype)
        if coretype == "Zen" and default["machine"]["blas"][0]["core"] == "Cooperlake":
            # This machine's case (issue 22): another core, other float32 roundings.
            assert other["product"] != default["product"]
    assert len(cores) >= 2


def sessions(config):
    return [(entry["first_epoch"], entry["backend"],
             entry["machine"]["openblas_coretype"]) for entry in config["machines"]]


@pytest.mark.slow
@linux_only
def test_each_process_that_trains_a_run_records_its_machine(tmp_path):
    model, _ = cpuinfo_by_regex()
    config, run_dir = train(tmp_path, "--stop-after", "1")
    assert sessions(config) == [(0, "c", None)]
    assert config["machines"][0]["machine"]["cpu"]["model"] == model
    assert "xla" not in config["machines"][0]["machine"]  # the C backend never loads JAX
    config, _ = train(tmp_path, "--stop-after", "2")  # the same machine: still one entry
    assert sessions(config) == [(0, "c", None)]
    config, _ = train(tmp_path, OPENBLAS_CORETYPE="Zen")
    assert sessions(config) == [(0, "c", None), (2, "c", "Zen")]
    theirs = config["machines"][1]["machine"]
    assert [e["core"] for e in theirs["blas"] if e["file"] == theirs["theano_blas"]] == ["Zen"]
    text = describe_machines(config["machines"])
    assert text.startswith("c backend on %s" % model) and "from epoch 3: c backend" in text


@pytest.mark.slow
def test_a_jax_session_records_xla_and_report_names_the_machines(tmp_path):
    pytest.importorskip("jax")
    train(tmp_path, "--stop-after", "1")
    config, run_dir = train(tmp_path, "--backend", "jax")
    assert sessions(config) == [(0, "c", None), (1, "jax", None)]
    xla = config["machines"][1]["machine"]["xla"]
    versions = json.loads(python("import jax, jaxlib, json; d = jax.devices()[0]; print("
                                 "json.dumps([jax.__version__, jaxlib.__version__, d.platform,"
                                 " d.device_kind, len(jax.devices())]))"))
    assert [xla["jax"], xla["jaxlib"], xla["platform"], xla["device_kind"],
            xla["devices"]] == versions
    assert config["machines"][1]["machine"]["gpu"] == (
        versions[3] if versions[2] in ("gpu", "cuda", "rocm") else None)
    import test_grid  # noqa: F401  (registers the tiny setup in this process too)
    from plots.report import write_report
    from plots.verdict.results import find_runs
    runs, problems = find_runs(str(tmp_path))
    assert problems == [] and len(runs) == 1
    markdown, _ = write_report(str(tmp_path / "report"), runs, {})
    with open(markdown) as f:
        line = [line for line in f if line.startswith("Machines: ")]
    assert line == ["Machines: %s (1 runs).\n" % describe_machines(config["machines"])]
    assert "from epoch 2: jax backend on" in line[0]


def test_a_retrained_epoch_forgets_the_machine_that_trained_it_before(tmp_path):
    run_dir = str(tmp_path)
    write_json(os.path.join(run_dir, CONFIG_FILE), {"setup": "x"})
    record_machine(run_dir, "c", 0)
    first = read_json(os.path.join(run_dir, CONFIG_FILE))["machines"]
    record_machine(run_dir, "c", 3)  # the same process's machine: nothing new
    assert read_json(os.path.join(run_dir, CONFIG_FILE))["machines"] == first
    os.environ["OPENBLAS_CORETYPE"] = "Zen"  # only read back as a variable here
    try:
        record_machine(run_dir, "c", 3)
        record_machine(run_dir, "c", 5)
        recorded = read_json(os.path.join(run_dir, CONFIG_FILE))["machines"]
        assert [e["first_epoch"] for e in recorded] == [0, 3]
        record_machine(run_dir, "c", 0)  # trained again from epoch 0
        recorded = read_json(os.path.join(run_dir, CONFIG_FILE))["machines"]
    finally:
        del os.environ["OPENBLAS_CORETYPE"]
    assert [(e["first_epoch"], e["machine"]["openblas_coretype"]) for e in recorded] == \
        [(0, "Zen")]
