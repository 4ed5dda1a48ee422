"""A wrong environment is one line and exit code 2 from the command lines, never a traceback.

Each fault is produced for real and met through the real command line, in a subprocess:
a HOME or compile cache that cannot be written (a path under a regular file, a read-only
mount), flags Theano refuses, a JAX that fails to import, a damaged shared archive.
"""
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_PY = os.path.join(REPO, "experiments", "run.py")
GRID_PY = os.path.join(REPO, "experiments", "grid.py")
CELL = ["--lr", "0.001", "--beta2", "0.99", "--optimizer", "adam", "--bias-correction", "on",
        "--stop-after", "1"]


def command(name, results):
    """The argv of one command line that compiles Theano functions."""
    return {"run.py": [RUN_PY, "logreg"] + CELL + ["--results-dir", results],
            "run.py synthetic": [RUN_PY, "synthetic", "--steps", "100", "--no-progress",
                                 "--results-dir", results],
            "grid.py": [GRID_PY, "logreg"] + CELL + ["--run", "0", "--results-dir", results],
            }[name]


def run(argv, timeout=300, **env):
    """Run ``python argv`` with the environment changed by ``env`` (None: unset).

    Without the flags compat set in this process (they name its compile cache).
    """
    environment = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get(
        "PYTHONPATH", ""))
    environment.pop("THEANO_FLAGS", None)
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    return subprocess.run([sys.executable] + argv, capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=REPO)


def assert_one_line(completed, prog, *parts):
    assert completed.returncode == 2, completed.stderr
    lines = [line for line in completed.stderr.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith(prog + ": error: "), completed.stderr
    for part in parts:
        assert part in lines[0]
    return lines[0]


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may write, root included: a read-only tmpfs mount for root."""
    path = tmp_path / "read-only"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield str(path)
        path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("root without mount(8): no directory root cannot write")
    try:
        assert not os.access(str(path), os.W_OK)
        yield str(path)
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("name", ["run.py", "run.py synthetic", "grid.py"])
@pytest.mark.parametrize("home", ["under a file", "/dev/null", "read-only"])
def test_unwritable_home_is_one_line_naming_the_variable(tmp_path, request, name, home):
    if home == "under a file":
        (tmp_path / "file").write_text("")
        home = str(tmp_path / "file" / "home")  # ENOTDIR
    elif home == "read-only":
        home = request.getfixturevalue("read_only_dir")
    results = str(tmp_path / "R")
    completed = run(command(name, results), HOME=home, AMSGRAD_THEANO_CACHE=None,
                    XDG_CACHE_HOME=None)
    line = assert_one_line(completed, name, "Theano's compile cache",
                           "set $AMSGRAD_THEANO_CACHE to a writable directory")
    assert line.startswith("%s: error: cannot use %s/.cache/amsgrad-experiments/theano"
                           % (name, home))
    assert not [files for _, _, files in os.walk(results) if files]  # nothing written


@pytest.mark.parametrize("name", ["run.py", "grid.py"])
def test_read_only_theano_cache_is_one_line(tmp_path, read_only_dir, name):
    completed = run(command(name, str(tmp_path / "R")), AMSGRAD_THEANO_CACHE=read_only_dir)
    assert_one_line(completed, name, "cannot use %s as Theano's compile cache" % read_only_dir,
                    "set $AMSGRAD_THEANO_CACHE to a writable directory")
    completed = run(command(name, str(tmp_path / "R")), THEANO_FLAGS="base_compiledir="
                    + read_only_dir)
    assert_one_line(completed, name, "cannot use %s as Theano's compile cache" % read_only_dir,
                    "set base_compiledir in $THEANO_FLAGS to a writable directory")


@pytest.mark.parametrize("flags, says", [
    ("floatX=float17", "Theano refuses its flags (THEANO_FLAGS=floatX=float17): Invalid value "
                       "('float17') for configuration variable 'floatX'"),
    ("mode=NOPE", "Theano refuses its flags (THEANO_FLAGS=mode=NOPE): "),
    ("blas__ldflags=-lnosuchblas", "Theano's flag blas__ldflags=-lnosuchblas names a library "
                                   "that is not installed (-lnosuchblas)"),
    ("blas.ldflags=-L/nowhere -lopenblas -lnosuchblas", "(-lnosuchblas)"),
])
@pytest.mark.parametrize("name", ["run.py", "run.py synthetic", "grid.py"])
def test_bad_theano_flags_are_one_line(tmp_path, name, flags, says):
    completed = run(command(name, str(tmp_path / "R")), THEANO_FLAGS=flags)
    assert_one_line(completed, name, says, "$THEANO_FLAGS")


def test_a_blas_library_in_a_named_directory_is_found(tmp_path):
    # -L DIR -lNAME with DIR/libNAME.so there is not refused (the linker finds it there).
    (tmp_path / "libmyblas.so").write_bytes(b"")
    completed = run(["-c", "import compat"],
                    THEANO_FLAGS="blas__ldflags=-L%s -lmyblas" % tmp_path)
    assert completed.returncode == 0, completed.stderr


@pytest.fixture
def broken_jax(tmp_path):
    """A directory for PYTHONPATH whose ``jax`` fails to import as a jax/jaxlib mismatch does."""
    package = tmp_path / "site" / "jax"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise RuntimeError("jaxlib version 0.4.1 is installed, but this version of jax '
        'requires version >= 0.4.30.")\n')
    return str(tmp_path / "site")


@pytest.mark.parametrize("name", ["run.py", "run.py synthetic", "grid.py"])
def test_a_jax_that_fails_to_import_is_one_line(tmp_path, broken_jax, name):
    completed = run(command(name, str(tmp_path / "R")) + ["--backend", "jax"],
                    PYTHONPATH=broken_jax + os.pathsep + REPO)
    assert_one_line(completed, name, "JAX is installed but cannot be imported (RuntimeError: "
                                     "jaxlib version 0.4.1 is installed", "--backend c")


@pytest.mark.slow
def test_the_c_backend_runs_beside_a_jax_that_fails_to_import(tmp_path, broken_jax):
    completed = run(command("run.py synthetic", str(tmp_path / "R")),
                    PYTHONPATH=broken_jax + os.pathsep + REPO)
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "R" / "synthetic" / "summary.json").is_file()


def test_prepare_shared_data_on_a_truncated_archive(tmp_path, shared_data):
    """The real look-alike archive cut short: one line, exit 2, nothing in OUT."""
    source = os.path.join(shared_data, "cifar10-jpeg")
    if not os.path.isfile(os.path.join(source, "to_python_batches.py")):
        pytest.skip("no shared CIFAR-10 look-alike in %s" % source)
    damaged = tmp_path / "shared" / "cifar10-jpeg"
    damaged.mkdir(parents=True)
    shutil.copy(os.path.join(source, "to_python_batches.py"), str(damaged))
    with open(os.path.join(source, "cifar10-jpeg.tar.xz"), "rb") as handle:
        (damaged / "cifar10-jpeg.tar.xz").write_bytes(handle.read(400000))
    out = tmp_path / "out"
    completed = run([os.path.join(REPO, "scripts", "prepare_shared_data.py"), str(out)],
                    AMSGRAD_SHARED_DATA=str(tmp_path / "shared"))
    assert_one_line(completed, "prepare_shared_data.py",
                    "cannot convert %s (EOFError: " % (damaged / "cifar10-jpeg.tar.xz"),
                    "nothing was written to %s" % out)
    assert sorted(os.listdir(str(tmp_path))) == ["shared"]  # no OUT, no OUT.partial
