"""Installs amsgrad-experiments: the update rules, the models, the data loaders,
the experiments and the plots of "Experiments with AMSGrad" on Theano-PyMC + Lasagne 0.1.

The pins are the versions that work together on Python 3.11: Theano-PyMC 1.1.2 uses numpy
aliases removed in numpy 1.24, and newer scipy/matplotlib releases require numpy 2.
`constraints.txt` pins the whole tree for `make setup`.
"""
from setuptools import find_packages, setup

#: The project's packages; their sub-packages (experiments/records/, ...) are installed too.
PACKAGES = ("compat", "ops", "models", "experiments", "data", "plots", "backends")

setup(
    name="amsgrad-experiments",
    version="0.1.0",
    description="A runnable port of the Theano/Lasagne experiments behind 'Experiments with AMSGrad'",
    python_requires=">=3.11",
    py_modules=["amsgrad", "amsgrad_variants", "errors"],
    packages=find_packages(include=PACKAGES + tuple(name + ".*" for name in PACKAGES)),
    # The same commands as experiments/run.py, experiments/grid.py and plots/make_figures.py,
    # on the PATH of the environment the project is installed in.
    entry_points={"console_scripts": [
        "amsgrad-run = experiments.run:main",
        "amsgrad-grid = experiments.grid:command",
        "amsgrad-figures = plots.make_figures:command",
    ]},
    install_requires=[
        "theano-pymc==1.1.2",
        "lasagne==0.1",
        "numpy>=1.23,<1.24",
        "scipy==1.10.1",
        "matplotlib==3.9.4",
        "tqdm>=4.60",
        "requests>=2.28",
        # lasagne 0.1 imports pkg_resources at import time
        "setuptools<81",
    ],
    extras_require={
        # --scheduler ADDRESS of experiments/grid.py: runs on a Dask distributed cluster
        "dask": ["dask[distributed]==2024.12.1"],
        # --backend jax (CPU build; the last jax release that takes numpy 1.23)
        "jax": ["jax==0.4.30", "jaxlib==0.4.30"],
        # --backend jax on an NVIDIA GPU (make setup GPU=cuda12): the CUDA 12 plugin and
        # PJRT wheels of the same release, CUDA's libraries as nvidia-*-cu12 wheels
        "gpu": ["jax[cuda12]==0.4.30"],
        # bench/step_time.py's PyTorch peer; torch needs setuptools>=77, lasagne <81
        "bench": ["torch==2.13.0", "setuptools>=77,<81"],
        # tests/test_variants.py's libraries: PyTorch (CPU wheel), Keras 3 (on jax), and
        # Optax's dependencies.  Optax 0.2.3 needs chex>=0.1.86, whose metadata asks for
        # numpy>=1.24.1 (it runs with 1.23.5): `make conformance` installs those two
        # without their dependency check; chex 0.1.7, the last that allows numpy 1.23,
        # does not import with jax 0.4.30.  torch needs setuptools>=77, lasagne <81.
        "conformance": ["torch==2.13.0", "setuptools>=77,<81", "keras==3.15.1",
                        "absl-py>=0.7.1", "etils[epy]", "toolz>=0.9.0"],
        # the tests cover both backends and the Dask grid
        "test": ["pytest>=7", "dask[distributed]==2024.12.1", "jax==0.4.30", "jaxlib==0.4.30"],
    },
)
