"""The committed reproduction (reproduction/): its report is the one its histories give.

``reproduction/REPORT.md`` and ``report.csv`` were written by ``plots/make_figures.py``
from the packed histories in ``reproduction/histories/`` (see reproduction/README.md);
regenerating them from those files must give the committed files byte for byte, so the
report cannot drift from its data.  Also: every run there carries the data it was
trained on, and the README's figure exists.
"""
import os
import subprocess
import sys

import pytest

from plots import make_figures
from plots.verdict.results import find_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPRODUCTION = os.path.join(REPO, "reproduction")
HISTORIES = os.path.join("reproduction", "histories")  # as the report names it

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(REPO, HISTORIES)),
                                reason="no reproduction/histories in this checkout")


def read(path):
    with open(path, encoding="utf-8") as stream:
        return stream.read()


def test_report_regenerated_from_the_committed_histories_is_the_committed_report(
        tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the report names its sources as given, relative to the root
    assert make_figures.main(["--results-dir", HISTORIES, "--out", str(tmp_path)]) == 0
    for name in ("REPORT.md", "report.csv"):
        assert read(tmp_path / name) == read(os.path.join(REPRODUCTION, name)), name


#: NumPy's SIMD loops left out, so that only the baseline x86-64 code runs (as on an old CPU).
NUMPY_SIMD = ("SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2 AVX512F AVX512CD AVX512_KNL AVX512_KNM "
              "AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL")


def newest_openblas_coretype():
    """An OpenBLAS core type this CPU can run whose kernels differ from Prescott's."""
    with open("/proc/cpuinfo", encoding="utf-8") as stream:
        flags = next((line.split(":", 1)[1].split() for line in stream
                      if line.startswith("flags")), [])
    return "Haswell" if "avx2" in flags else "Sandybridge" if "avx" in flags else "Nehalem"


@pytest.mark.slow
def test_the_report_is_the_same_whatever_blas_kernel_computes_it(tmp_path):
    # The committed report was once written on an AMD EPYC and differed in its last digit on an
    # Intel Xeon: the calibration's draws went through a BLAS product.  Regenerate it under the
    # oldest kernels (Prescott's, NumPy without SIMD) and under the newest this CPU runs, at once.
    coretypes = {"Prescott": {"NPY_DISABLE_CPU_FEATURES": NUMPY_SIMD},
                 newest_openblas_coretype(): {}}
    processes = {}
    for coretype, extra in coretypes.items():
        env = {key: value for key, value in os.environ.items()
               if key != "NPY_DISABLE_CPU_FEATURES"}
        env.update(OPENBLAS_CORETYPE=coretype, OPENBLAS_VERBOSE="2", **extra)
        out = tmp_path / coretype
        processes[coretype] = subprocess.Popen(
            [sys.executable, os.path.join("plots", "make_figures.py"), "--results-dir", HISTORIES,
             "--out", str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
    for coretype, process in processes.items():
        output = process.communicate()[0]
        assert process.returncode == 0, output
        assert "Core: %s" % coretype in output  # OpenBLAS ran the kernels asked for
        for name in ("REPORT.md", "report.csv"):
            assert read(tmp_path / coretype / name) == read(os.path.join(REPRODUCTION, name)), \
                (coretype, name)


def test_every_committed_run_says_what_data_it_was_trained_on():
    runs, problems = find_runs(os.path.join(REPO, HISTORIES))
    assert problems == [] and runs
    assert all(run.data and run.data.get("content") for run in runs)


def test_the_figures_the_readme_and_report_show_are_committed():
    report = read(os.path.join(REPRODUCTION, "REPORT.md"))
    readme = read(os.path.join(REPO, "README.md"))
    assert "reproduction/REPORT.md" in readme
    shown = [line.split("](")[1].rstrip(")") for line in readme.splitlines()
             if line.startswith("![")]
    assert shown and all(os.path.isfile(os.path.join(REPO, path)) for path in shown)
    for name in os.listdir(REPRODUCTION):
        if name.endswith(".png"):
            assert name in report, name
