"""
Make Lasagne 0.1 (2015) import and run on Theano-PyMC 1.1.2 (2021).

Import this module before ``import lasagne`` (every module of this project that
needs Lasagne does ``import compat`` first).  It does three things:

1. Sets Theano's flags before Theano is first imported: float32, CPU, the
   BLAS link flags, and a compile cache outside the repository.  Flags the
   user gives in ``THEANO_FLAGS`` win over these defaults.
2. Puts back the names Lasagne 0.1 imports from Theano that Theano-PyMC
   renamed or removed (see :func:`install_shims`).
3. Makes the compile cache safe for several processes at once
   (:mod:`compat.theano_cache`).

Under NumPy 2 it first installs :mod:`compat.numpy2`, the names Theano-PyMC
needs from older NumPy and Python (for the JAX backend on GPU machines).
This package is the environment layer: of the project it imports only
:mod:`errors`.  A wrong environment (a compile cache that cannot be written,
flags Theano refuses, a BLAS library that is not there) makes ``import compat``
raise :class:`errors.UserError` with one line that says what to fix; the
command lines import it inside ``errors.run_cli``.

Examples
--------
>>> import compat  # noqa: F401  (before lasagne)
>>> import lasagne
>>> lasagne.layers.DenseLayer((None, 3), 2).output_shape
(None, 2)
"""
import ctypes.util
import os
import shlex
import sys
import traceback
import types
import warnings

from compat import numpy2 as numpy2_compat
from compat import theano_cache
from errors import UserError

numpy2_compat.install()  # NumPy 2 only (the JAX backend on a GPU machine); see there

__all__ = ["theano_defaults", "theano_flags", "install_shims", "theano_cache_dir"]


def theano_cache_dir():
    """Directory for Theano's compiled C modules (kept out of the repository).

    ``AMSGRAD_THEANO_CACHE`` if set, else ``$XDG_CACHE_HOME/amsgrad-experiments/theano``
    (``~/.cache/...`` by default).  Shared by all runs, so a grid compiles each
    function once.
    """
    if os.environ.get("AMSGRAD_THEANO_CACHE"):
        return os.path.abspath(os.environ["AMSGRAD_THEANO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "amsgrad-experiments", "theano")


def _blas_ldflags():
    # Without an explicit value Theano-PyMC asks numpy.distutils for the BLAS
    # configuration, which fails under numpy 1.23 on many systems; an empty value
    # makes Theano fall back to its own (slow) GEMM instead of crashing.
    for name in ("openblas", "blas"):
        if ctypes.util.find_library(name):
            return "-l" + name
    return ""


def theano_defaults():
    """The Theano flags this project sets, as a dict (before user overrides)."""
    return {
        "floatX": "float32",
        "device": "cpu",
        "blas__ldflags": _blas_ldflags(),
        "base_compiledir": theano_cache_dir(),
    }


def _normalize_key(key):
    # Old-style Theano flags use '.', Theano-PyMC uses '__' (both are accepted).
    return key.strip().replace(".", "__")


def theano_flags(user_flags=None):
    """The ``THEANO_FLAGS`` string: project defaults, then the user's flags.

    Parameters
    ----------
    user_flags : str or None
        The user's ``THEANO_FLAGS`` (default: the environment's).

    Returns
    -------
    str
        Comma-separated ``key=value`` pairs.  Theano lets later pairs override
        earlier ones; defaults whose key the user sets are left out altogether.
    """
    if user_flags is None:
        user_flags = os.environ.get("THEANO_FLAGS", "")
    user_keys = {_normalize_key(key) for key, _ in _flag_pairs(user_flags)}
    defaults = ["%s=%s" % (k, v) for k, v in theano_defaults().items()
                if _normalize_key(k) not in user_keys]
    return ",".join(defaults + ([user_flags] if user_flags.strip() else []))


def _flag_pairs(flags):
    """The ``(key, value)`` pairs of a ``THEANO_FLAGS`` string, in order."""
    splitter = shlex.shlex(flags, posix=True)
    splitter.whitespace = ","
    splitter.whitespace_split = True
    return [tuple(kv.split("=", 1)) for kv in splitter if "=" in kv]


def install_shims():
    """Add the Theano names Lasagne 0.1 imports, where Theano-PyMC lacks them.

    Idempotent.  Each shim says why it is needed.
    """
    import theano
    import theano.graph.basic
    import theano.sandbox.rng_mrg
    import theano.tensor.signal
    import theano.tensor.signal.pool

    # lasagne.utils: ``isinstance(x, theano.gof.Variable)``.  Theano-PyMC moved
    # the graph classes from ``theano.gof`` to ``theano.graph``.
    if "theano.gof" not in sys.modules:
        gof = types.ModuleType("theano.gof", "Lasagne 0.1 shim: theano.graph under its old name.")
        gof.Variable = theano.graph.basic.Variable
        gof.Apply = theano.graph.basic.Apply
        gof.Constant = theano.graph.basic.Constant
        sys.modules["theano.gof"] = gof
        theano.gof = gof

    # lasagne.layers.noise imports ``MRG_RandomStreams``; Theano-PyMC dropped
    # the trailing 's' (same class, same generator).
    rng_mrg = theano.sandbox.rng_mrg
    if not hasattr(rng_mrg, "MRG_RandomStreams"):
        rng_mrg.MRG_RandomStreams = rng_mrg.MRG_RandomStream

    # lasagne.layers.pool calls ``downsample.max_pool_2d(input, ds, st,
    # ignore_border, padding, mode)``; Theano renamed the module to ``pool``
    # and the function to ``pool_2d(input, ws, ignore_border, stride, pad, mode)``.
    if "theano.tensor.signal.downsample" not in sys.modules:
        downsample = types.ModuleType(
            "theano.tensor.signal.downsample",
            "Lasagne 0.1 shim: theano.tensor.signal.pool under its old name.")

        def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0), mode="max"):
            return theano.tensor.signal.pool.pool_2d(
                input, ws=ds, ignore_border=ignore_border, stride=st, pad=padding, mode=mode)

        downsample.max_pool_2d = max_pool_2d
        sys.modules["theano.tensor.signal.downsample"] = downsample
        theano.tensor.signal.downsample = downsample


def _compiledir(flags):
    # Theano: the last pair wins.
    values = [value for key, value in _flag_pairs(flags) if _normalize_key(key) == "base_compiledir"]
    return os.path.expanduser(values[-1]) if values else theano_cache_dir()


def _check_cache_dir(path):
    """Create Theano's compile cache ``path``; a user error when it cannot be written.

    Theano would fail inside its import, or at the first compilation, with a traceback.
    """
    try:
        os.makedirs(path, exist_ok=True)
        writable = os.access(path, os.W_OK | os.X_OK)  # EROFS and modes, also for root
        reason = "not writable"
    except OSError as exc:
        writable, reason = False, exc.strerror or str(exc)
    if not writable:
        fix = ("$AMSGRAD_THEANO_CACHE" if os.path.abspath(path) == theano_cache_dir()
               else "base_compiledir in $THEANO_FLAGS")
        raise UserError("cannot use %s as Theano's compile cache (%s); set %s to a writable "
                        "directory" % (path, reason, fix))


def _library_found(name, search_dirs):
    if any(os.path.exists(os.path.join(directory, "lib%s%s" % (name, suffix)))
           for directory in search_dirs for suffix in (".so", ".a", ".dylib")):
        return True
    return ctypes.util.find_library(name) is not None


def _check_blas_flags(flags):
    """A user error when ``blas__ldflags`` names a library that is not installed.

    Theano would only find out at the first compilation, in a linker error
    inside a traceback.
    """
    values = [value for key, value in _flag_pairs(flags)
              if _normalize_key(key) == "blas__ldflags"]
    if not values:
        return
    words = values[-1].split()  # Theano: the last pair wins
    search_dirs = [word[2:] for word in words if word.startswith("-L")]
    for word in words:
        if word.startswith("-l") and not _library_found(word[2:], search_dirs):
            raise UserError("Theano's flag blas__ldflags=%s names a library that is not "
                            "installed (%s); install it, or fix blas__ldflags in "
                            "$THEANO_FLAGS (leave it out for this project's default)"
                            % (values[-1], word))


def _import_theano(user_flags):
    """``import theano``, with the flags it refuses as one user error instead of a traceback."""
    try:
        import theano  # noqa: F401
    except ValueError as exc:
        # Theano checks every flag as it is imported (theano/configparser.py).
        frames = traceback.extract_tb(exc.__traceback__)
        if not any(frame.filename.endswith(os.path.join("theano", "configparser.py"))
                   for frame in frames):
            raise
        raise UserError("Theano refuses its flags (THEANO_FLAGS=%s): %s; fix or unset "
                        "$THEANO_FLAGS" % (user_flags, exc)) from None


def _configure():
    if "theano" in sys.modules:
        # Too late to set flags; say so once instead of failing later in odd ways.
        import theano
        if theano.config.floatX != "float32":
            warnings.warn("compat: theano was imported before compat with floatX=%s; "
                          "the experiments expect float32" % theano.config.floatX)
    else:
        user_flags = os.environ.get("THEANO_FLAGS", "")
        flags = theano_flags(user_flags)
        _check_cache_dir(_compiledir(flags))
        _check_blas_flags(flags)
        os.environ["THEANO_FLAGS"] = flags
        _import_theano(user_flags)
    # Theano 1.1 and Lasagne 0.1 still call numpy and setuptools APIs that warn.
    for module in ("theano", "lasagne", "pkg_resources"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
    # Setuptools 80 (which PyTorch's conformance extra brings) says so as a UserWarning when
    # Lasagne 0.1 imports pkg_resources: nothing a user can act on, one line on every command.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API",
                            category=UserWarning)
    # Lasagne 0.1 passes conv2d's old keyword ``image_shape`` (renamed ``input_shape``,
    # same meaning); Theano warns at every conv layer.
    warnings.filterwarnings("ignore", message="The `image_shape` keyword argument")
    install_shims()
    theano_cache.install()


_configure()
