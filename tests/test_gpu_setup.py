"""The GPU set-up's logic, without a GPU: what ``make setup GPU=...`` would run, and gpu-site.

``make -n`` prints the commands a target would run without running them;
``-B`` treats every target as out of date, so the output does not depend on
what this checkout's ``.venv`` already holds.
"""
import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import gpu_site  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_dry_run(*arguments):
    # Run from `make test`, a nested make would print "Entering directory" lines and inherit
    # the outer make's flags: run it as a make of its own.
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    return subprocess.run(["make", "-n", "-B", *arguments], cwd=ROOT, capture_output=True,
                          text=True, env=environment)


def pip_installs(output):
    return [line for line in output.splitlines() if "pip install" in line and "-e" in line]


def test_setup_gpu_cuda12_installs_the_gpu_extra_into_the_same_venv():
    result = make_dry_run("setup", "GPU=cuda12")
    assert result.returncode == 0, result.stderr
    assert pip_installs(result.stdout) == [
        '.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"',
        '.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,gpu]"']


def test_setup_without_gpu_installs_the_cpu_build_only():
    result = make_dry_run("setup")
    assert result.returncode == 0, result.stderr
    assert pip_installs(result.stdout) == [
        '.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"']


@pytest.mark.parametrize("gpu", ["rocm", "cuda11", "CUDA12"])
def test_an_unknown_gpu_is_refused_with_what_to_use(gpu):
    result = make_dry_run("setup", "GPU=" + gpu)
    assert result.returncode == 2
    assert "unknown GPU=%s; use GPU=cuda12 (JAX with CUDA 12), or no GPU= for the CPU " \
           "build" % gpu in result.stderr
    assert result.stdout == ""  # nothing would have run


def test_the_gpu_extra_is_jax_with_cuda12_of_the_cpu_builds_release():
    requirements = importlib.metadata.requires("amsgrad-experiments")
    assert 'jax[cuda12]==0.4.30; extra == "gpu"' in requirements
    # the same release as the CPU build, whose jaxlib the CUDA plugin needs
    assert 'jax==0.4.30; extra == "jax"' in requirements
    with open(os.path.join(ROOT, "constraints.txt")) as constraints:
        pins = constraints.read().split()
    assert {"jax==0.4.30", "jaxlib==0.4.30", "numpy==1.23.5"} <= set(pins)


def test_gpu_site_copies_theano_and_lasagne_only(tmp_path):
    stale = tmp_path / "theano" / "removed_module.py"
    stale.parent.mkdir()
    stale.write_text("")
    count = gpu_site.copy_site(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["lasagne", "lasagne-0.1.dist-info", "theano",
                                            "theano_pymc-1.1.2.dist-info"]
    assert not stale.exists()  # an earlier copy is replaced, not merged
    import theano
    import lasagne
    installed = os.path.dirname(theano.__file__)
    for package, module in (("theano", theano), ("lasagne", lasagne)):
        copied = tmp_path / package / "__init__.py"
        with open(module.__file__, "rb") as original:
            assert copied.read_bytes() == original.read()
    assert (tmp_path / "theano" / "tensor" / "basic.py").read_bytes() == open(
        os.path.join(installed, "tensor", "basic.py"), "rb").read()
    assert count == sum(len(files) for _, _, files in os.walk(tmp_path))


def test_make_gpu_site_runs_the_script_into_the_directory_given():
    result = make_dry_run("gpu-site", "GPU_SITE=/tmp/elsewhere")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == ".venv/bin/python scripts/gpu_site.py /tmp/elsewhere"
