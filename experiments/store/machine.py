"""
What decides a process's arithmetic besides the code: the CPU, the BLAS libraries and their
kernels, XLA's target and the GPU.

.. autosummary::
    :nosignatures:

    describe_machine
    cpu_info
    blas_libraries
    theano_blas
    jax_target
    machine_text

OpenBLAS built with ``DYNAMIC_ARCH`` picks its kernels by CPU when it is loaded
(``OPENBLAS_CORETYPE`` overrides it), and XLA compiles for the host's CPU or for the
GPU: the same run, data, versions and threads give other float32 roundings on
another machine, and a CNN's epoch amplifies them.  :func:`describe_machine` reads
what this process uses now; the run store records it in each run's ``config.json``
once per process that trains the run (:func:`experiments.store.rundir.record_machine`).

Imports neither Theano nor JAX: it reads what the process has loaded
(``sys.modules``, ``/proc/self/maps``), so it costs a few milliseconds and never
loads a backend the run does not use.

Examples
--------
>>> from experiments.store import machine
>>> sorted(machine.describe_machine("c"))
['blas', 'cpu', 'openblas_coretype', 'theano_blas']
"""
import ctypes
import ctypes.util
import functools
import importlib.metadata
import os
import platform
import re
import shlex
import sys

__all__ = ["describe_machine", "cpu_info", "blas_libraries", "theano_blas", "jax_target",
           "machine_text", "ISA_FLAGS"]

#: The CPU instruction sets (``/proc/cpuinfo`` flags) that change which kernels
#: OpenBLAS and XLA use, recorded when the CPU has them.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
#: File names of BLAS libraries in ``/proc/self/maps``.
_BLAS_FILE = re.compile(r"^lib(openblas|blas|cblas|mkl_rt|blis|flexiblas)[^/]*\.so[^/]*$")
_OPENBLAS_VERSION = re.compile(r"OpenBLAS\s+(\S+)")


@functools.lru_cache(maxsize=1)
def cpu_info(path="/proc/cpuinfo"):
    """The CPU: ``model`` name, ``vendor``, ``family``/``number``/``stepping`` and ``isa``.

    Read from the first processor of ``path`` (Linux); elsewhere ``model`` is
    :func:`platform.processor` and the rest is None.  Under a hypervisor the
    model name can be generic ("AMD EPYC"): family, number and stepping say
    which CPU it is.
    """
    fields = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block ends
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "vendor": None,
                "family": None, "number": None, "stepping": None, "isa": None}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name"), "vendor": fields.get("vendor_id"),
            "family": fields.get("cpu family"), "number": fields.get("model"),
            "stepping": fields.get("stepping"),
            "isa": [flag for flag in ISA_FLAGS if flag in flags]}


def _mappings():
    """``(start, end, path)`` of each file mapped into this process (Linux), else []."""
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            start, end = (int(value, 16) for value in parts[0].split("-"))
            found.append((start, end, parts[5]))
    return found


def _openblas_strings(path):
    """OpenBLAS's ``(config, corename)`` of a loaded library, or (None, None)."""
    try:
        library = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)  # loads nothing new
    except OSError:
        return None, None
    values = []
    for name in ("openblas_get_config", "openblas_get_corename"):
        # NumPy's own build suffixes its symbols with 64_ (64-bit integers).
        function = getattr(library, name, None) or getattr(library, name + "64_", None)
        if function is None:
            return None, None
        function.restype = ctypes.c_char_p
        values.append(function().decode("ascii", "replace").strip())
    return tuple(values)


def blas_libraries():
    """Every BLAS library loaded in this process, with OpenBLAS's version and kernel core.

    Returns
    -------
    list of dict
        ``{"file", "version", "core", "config"}`` per library (the last three
        None for a library that is not OpenBLAS), in file order.  NumPy and
        SciPy bring their own OpenBLAS; Theano's C code uses the one its
        ``blas__ldflags`` name (:func:`theano_blas`).
    """
    libraries = []
    for path in sorted({path for _, _, path in _mappings()
                        if _BLAS_FILE.match(os.path.basename(path))}):
        config, core = _openblas_strings(path)
        version = _OPENBLAS_VERSION.match(config or "")
        libraries.append({"file": path, "version": version and version.group(1), "core": core,
                          "config": config})
    return libraries


@functools.lru_cache(maxsize=8)
def _candidates(ldflags):
    # -L directories first, as the linker searches them; then the system's library path.
    words = shlex.split(ldflags)
    dirs = [word[2:] for word in words if word.startswith("-L")]
    found = []
    for name in (word[2:] for word in words if word.startswith("-l")):
        found += [os.path.join(d, "lib%s.so" % name) for d in dirs]
        found.append(ctypes.util.find_library(name))
    return tuple(path for path in found if path)


def theano_blas(ldflags):
    """The file of the BLAS library Theano's C code is linked with, once it is loaded.

    ``ldflags`` is Theano's ``blas__ldflags`` (``-lopenblas``).  The library is
    found as the dynamic linker found it (the file that holds its ``sgemm_``),
    so links and ``update-alternatives`` are resolved.  None when Theano has
    not loaded it (nothing compiled with BLAS yet) or ``ldflags`` is empty.
    """
    mappings = _mappings()
    for candidate in _candidates(ldflags or ""):
        try:
            library = ctypes.CDLL(candidate, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        except OSError:
            continue
        symbol = getattr(library, "sgemm_", None)
        if symbol is None:
            continue
        address = ctypes.cast(symbol, ctypes.c_void_p).value
        for start, end, path in mappings:
            if start <= address < end:
                return path
    return None


def jax_target():
    """What XLA compiles for: JAX's default devices, XLA's flags and the jax/jaxlib versions.

    Call it only where JAX is in use (it reads the loaded ``jax``; None when it
    is not loaded).  On a CPU, XLA targets the host's CPU (:func:`cpu_info`)
    unless ``XLA_FLAGS`` limits it (``--xla_cpu_max_isa``).
    """
    jax = sys.modules.get("jax")
    if jax is None:
        return None
    devices = jax.devices()
    client = getattr(devices[0], "client", None)
    return {"platform": devices[0].platform, "device_kind": devices[0].device_kind,
            "devices": len(devices),
            "platform_version": getattr(client, "platform_version", None),
            "xla_flags": os.environ.get("XLA_FLAGS"),
            "jax": _version("jax"), "jaxlib": _version("jaxlib")}


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_machine(backend):
    """What decides the arithmetic of a process training with ``backend`` (``'c'``, ``'jax'``).

    Returns
    -------
    dict
        ``cpu`` (:func:`cpu_info`), ``blas`` (:func:`blas_libraries`),
        ``theano_blas`` (:func:`theano_blas` of Theano's ``blas__ldflags``),
        ``openblas_coretype`` (the variable, None when unset); with ``'jax'``
        also ``xla`` (:func:`jax_target`) and ``gpu`` (the device kind of a
        GPU, else None).  JSON-ready.
    """
    theano = sys.modules.get("theano")
    ldflags = str(theano.config.blas__ldflags) if theano is not None else ""
    described = {"cpu": cpu_info(), "blas": blas_libraries(), "theano_blas": theano_blas(ldflags),
                 "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE")}
    if backend == "jax":
        xla = jax_target()
        described.update(xla=xla, gpu=xla["device_kind"] if xla and xla["platform"] in (
            "gpu", "cuda", "rocm") else None)
    return described


def machine_text(machine, backend=None):
    """A machine record (:func:`describe_machine`) in a few words, for reports.

    E.g. ``"AMD EPYC (family 25 model 17), Theano's OpenBLAS 0.3.21 core Cooperlake"``,
    with ``, XLA on cpu`` or the GPU for the JAX backend.
    """
    if not isinstance(machine, dict):
        return "machine not recorded"
    cpu = machine.get("cpu") or {}
    text = "%s (family %s model %s)" % (cpu.get("model"), cpu.get("family"), cpu.get("number"))
    blas = [entry for entry in machine.get("blas") or [] if isinstance(entry, dict)
            and entry.get("file") == machine.get("theano_blas")]
    if blas and blas[0].get("core"):
        text += ", Theano's OpenBLAS %s core %s" % (blas[0].get("version"), blas[0]["core"])
    elif backend != "jax":
        text += ", Theano's BLAS %s" % (os.path.basename(machine.get("theano_blas") or "")
                                        or "not recorded")
    xla = machine.get("xla")
    if isinstance(xla, dict):
        text += ", XLA on %s" % (machine.get("gpu") or xla.get("platform"))
    return text
