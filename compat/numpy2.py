"""
Let Theano-PyMC 1.1 and Lasagne 0.1 import under NumPy 2 and Python 3.12, for the JAX backend.

.. autosummary::
    :nosignatures:

    install
    needed

Theano-PyMC 1.1.2 (2021) uses NumPy names that NumPy 2 removed
(``numpy.distutils``, ``np.int``, ``np.complex``, ``np.cast``,
``np.sctype2char``, ``np.product``) and the ``distutils`` package that Python
3.12 removed; Lasagne 0.1 reads its version through ``pkg_resources``.
:func:`install` puts those names back (aliases of what replaced them, or
stubs) and turns Theano's C compiler off (``cxx=``, in ``THEANO_FLAGS``):
Theano's C code is not built for NumPy 2, and the JAX backend
(:mod:`backends.jax_linker`) needs none of it.  Under NumPy 2 the only
backend is therefore ``jax``; Theano's own Python implementations
(``perform``) run where the JAX linker evaluates shapes while tracing.

It changes nothing under NumPy 1 (the project's pinned environment), and it
imports NumPy only when NumPy 2 is installed.  ``compat`` (this package)
calls it first, before Theano's flags are set.

Examples
--------
>>> from compat import numpy2
>>> numpy2.install()   # no-op under NumPy 1; before theano is imported
False
"""
import importlib.metadata
import os
import sys
import types

__all__ = ["install", "needed"]


def needed():
    """Whether the installed NumPy is 2 or later (read without importing NumPy)."""
    try:
        version = importlib.metadata.version("numpy")
    except importlib.metadata.PackageNotFoundError:
        return False
    return int(version.split(".")[0]) >= 2


class _Cast:
    # np.cast[dtype](x), removed in NumPy 2: x as an array of that dtype.
    def __getitem__(self, dtype):
        import numpy as np
        return lambda value: np.asarray(value, dtype=dtype)


def _numpy_aliases(np):
    aliases = {
        "int": int, "complex": complex, "float": float, "bool": bool, "object": object,
        "product": np.prod, "cumproduct": np.cumprod, "alltrue": np.all,
        "sometrue": np.any, "cast": _Cast(),
        "sctype2char": lambda sctype: np.dtype(sctype).char,
    }
    for name, value in aliases.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def _numpy_distutils_stub(np):
    # Theano imports numpy.distutils for the BLAS flags and NumPy's include
    # directory, both of its C code only (which stays off).
    if "numpy.distutils" in sys.modules:
        return
    distutils = types.ModuleType("numpy.distutils", "numpy2_compat stub (no numpy.distutils)")
    misc_util = types.ModuleType("numpy.distutils.misc_util")
    misc_util.get_numpy_include_dirs = lambda: [np.get_include()]
    config = types.ModuleType("numpy.distutils.__config__")
    config.blas_opt_info = {}
    system_info = types.ModuleType("numpy.distutils.system_info")
    system_info.get_info = lambda name: {}
    system_info.system_info = types.SimpleNamespace(verbosity=0)
    distutils.misc_util, distutils.__config__ = misc_util, config
    distutils.system_info = system_info
    for module in (distutils, misc_util, config, system_info):
        sys.modules[module.__name__] = module
    np.distutils = distutils


def _distutils():
    # Python 3.12 dropped distutils; setuptools ships a copy.
    try:
        import distutils.spawn  # noqa: F401
        import distutils.sysconfig  # noqa: F401
    except ImportError:
        import setuptools._distutils as distutils
        import setuptools._distutils.spawn  # noqa: F401
        import setuptools._distutils.sysconfig  # noqa: F401
        sys.modules["distutils"] = distutils
        sys.modules["distutils.spawn"] = distutils.spawn
        sys.modules["distutils.sysconfig"] = distutils.sysconfig


def _pkg_resources():
    # Lasagne's __init__: pkg_resources.get_distribution("Lasagne").version.
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pkg_resources", "numpy2_compat stub (no pkg_resources)")

        def get_distribution(name):
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                version = "unknown"
            return types.SimpleNamespace(project_name=name, version=version)

        stub.get_distribution = get_distribution
        stub.DistributionNotFound = importlib.metadata.PackageNotFoundError
        sys.modules["pkg_resources"] = stub


def _compiler_off():
    flags = os.environ.get("THEANO_FLAGS", "")
    if "cxx=" not in flags:
        os.environ["THEANO_FLAGS"] = ",".join(filter(None, ["cxx=", flags]))


def install():
    """Make Theano and Lasagne importable under NumPy 2 (see the module docstring).

    Call it before Theano is imported.  Idempotent.

    Returns
    -------
    bool
        Whether anything was installed (False under NumPy 1)
    """
    if not needed():
        return False
    import numpy as np
    _numpy_aliases(np)
    _numpy_distutils_stub(np)
    _distutils()
    _pkg_resources()
    _compiler_off()
    return True
