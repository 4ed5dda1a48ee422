"""
Reading CIFAR-10 in its official python layout, from the archive or extracted.

.. autosummary::
    :nosignatures:

    find_cifar10
    read_cifar10

The official ``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/`` with five
training batches ``data_batch_1`` .. ``data_batch_5`` and one ``test_batch``,
each a pickled dict with ``data`` (uint8, one image per row: 1024 red, 1024
green, 1024 blue values, each plane row-major 32x32) and ``labels`` (0..9).
The archive is read directly, without extracting it.

The pickles are loaded with an unpickler that accepts only what a batch holds
(dicts, lists, strings, numbers and uint8 arrays, in the opcodes numpy and
pickle write for them), so a tampered file can neither run code nor ask for
more memory than its own size.

Examples
--------
>>> from data.cifar10 import find_cifar10, read_cifar10
>>> train_x, train_y, test_x, test_y = read_cifar10(find_cifar10("data/cifar10"))  # doctest: +SKIP
>>> train_x.shape                                                                # doctest: +SKIP
(50000, 3, 32, 32)
"""
import io
import math
import os
import pickle
import tarfile
import zlib

import numpy as np

from errors import UserError

__all__ = ["ARCHIVE", "BATCHES_DIR", "TRAIN_BATCHES", "TEST_BATCH", "find_cifar10",
           "read_cifar10"]

ARCHIVE = "cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple("data_batch_%d" % k for k in range(1, 6))
TEST_BATCH = "test_batch"
_IMAGE_SHAPE = (3, 32, 32)
_NUM_CLASSES = 10
_FIX = "delete or replace it with the official file (it is downloaded again when missing)"


class _Refused(pickle.UnpicklingError):
    """What a CIFAR-10 batch never holds."""


class _StandIn:
    """What ``find_class`` gives the unpickler: a function of ours, which no opcode can alter."""

    def __init__(self, function=None):
        self.function = function

    def __call__(self, *args):
        if self.function is None:
            raise _Refused("a call of numpy.ndarray, which numpy never pickles")
        return self.function(*args)

    def __setstate__(self, state):
        raise _Refused("a state given to a class or function")


#: Stands for ``numpy.ndarray``: only ever the first argument of :func:`_reconstruct`.
_NDARRAY = _StandIn()


class _UInt8:
    """Stands for ``numpy.dtype('u1')``, the only dtype of a batch's arrays."""

    def __setstate__(self, state):
        pass  # byte order and flags: a uint8 has none that matter (the array is built here)


class _ArrayState:
    """Stands for an array while it is unpickled; :meth:`__setstate__` builds the array.

    Only a C-ordered uint8 array whose bytes are all there: the array is made
    from those bytes, so a file cannot ask for more memory than it holds.
    """

    array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise _Refused("an array's state is not numpy's (version 1)")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _UInt8) or fortran or not isinstance(raw, bytes):
            raise _Refused("an array that is not C-ordered uint8 bytes")
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
                and math.prod(shape) == len(raw)):
            raise _Refused("an array whose shape %r does not match its %d bytes"
                           % (shape, len(raw)))
        self.array = np.frombuffer(raw, np.uint8).reshape(shape).copy()


def _reconstruct(cls, shape, typecode):
    # numpy's __reduce__: _reconstruct(ndarray, (0,), b'b'), then __setstate__.
    if not (cls is _NDARRAY and shape == (0,) and typecode in (b"b", "b")):
        raise _Refused("numpy's _reconstruct with shape %r and type code %r, which numpy "
                       "never pickles" % (shape, typecode))
    return _ArrayState()


def _dtype(name, align, copy):
    # numpy's __reduce__ of uint8: dtype('u1', False, True) (0 and 1 in older numpy).
    if not (name in ("u1", b"u1") and align in (False, 0) and copy in (True, 1)):
        raise _Refused("dtype(%r, %r, %r) is not the uint8 of a batch" % (name, align, copy))
    return _UInt8()


def _latin1(text, codec):
    # How Python 3 pickles bytes for protocol 2: _codecs.encode(str, 'latin1').  Any
    # other codec could turn a few bytes into many (hex, repeated, doubles each time).
    if not (isinstance(text, str) and codec in ("latin1", "latin-1")):
        raise _Refused("_codecs.encode with codec %r, not the latin1 of bytes" % (codec,))
    return text.encode("latin1")


#: The globals of the official batches (Python 2 pickles, protocol 2) and of Python 3's
#: protocol 2 to 4 pickles of the same dicts, each answered by a stand-in that accepts
#: only the arguments numpy and pickle give them there (numpy 2 writes numpy._core).
_ALLOWED_GLOBALS = {("numpy.core.multiarray", "_reconstruct"): _StandIn(_reconstruct),
                    ("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _StandIn(_dtype),
                    ("_codecs", "encode"): _StandIn(_latin1)}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        found = _ALLOWED_GLOBALS.get((module.replace("numpy._core", "numpy.core"), name))
        if found is None:
            raise _Refused("it asks for %s.%s, which a CIFAR-10 batch does not contain; "
                           "refusing to load it" % (module, name))
        return found


def _unpickle(content):
    """The batch pickled in ``content`` (bytes), its arrays made NumPy arrays."""
    # From bytes in memory: a length field can never ask the reader for more than is there.
    batch = _BatchUnpickler(io.BytesIO(content), encoding="bytes").load()
    if isinstance(batch, dict):
        batch = {key: value.array if isinstance(value, _ArrayState) else value
                 for key, value in batch.items()}
    return batch


def find_cifar10(directory):
    """Where CIFAR-10 is in ``directory``, if it is there.

    Parameters
    ----------
    directory : str
        A directory that may hold ``cifar-10-batches-py/``, the batch files
        themselves, or ``cifar-10-python.tar.gz``.

    Returns
    -------
    str or None
        The directory of the extracted batches (preferred: faster to read), else
        the archive, else None.
    """
    for batches in (os.path.join(directory, BATCHES_DIR), directory):
        if all(os.path.isfile(os.path.join(batches, name))
               for name in TRAIN_BATCHES + (TEST_BATCH,)):
            return batches
    archive = os.path.join(directory, ARCHIVE)
    return archive if os.path.isfile(archive) else None


def _load_batch(content, where):
    """(images NCHW uint8, labels uint8) of one pickled batch (``content``: its bytes)."""
    try:
        batch = _unpickle(content)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as exc:
        raise UserError("%s is not a readable CIFAR-10 batch (%s); %s" % (where, exc, _FIX))
    if not isinstance(batch, dict):
        raise UserError("%s holds a %s, a CIFAR-10 batch is a dict; %s"
                        % (where, type(batch).__name__, _FIX))
    # Python 2 pickles (the official files) have bytes keys, Python 3 ones str keys.
    fields = {(key.decode("latin1") if isinstance(key, bytes) else key): value
              for key, value in batch.items()}
    if "data" not in fields or "labels" not in fields:
        raise UserError("%s lacks the 'data' or 'labels' entry of a CIFAR-10 batch; %s"
                        % (where, _FIX))
    images, labels = fields["data"], fields["labels"]
    # A list of ints, as in the official files, before NumPy sees it: nested lists that
    # share their items cost the file little but np.asarray an array of 2^32 entries.
    if not (isinstance(labels, list) and all(type(label) is int for label in labels)):
        raise UserError("%s: 'labels' is not a list of integers; %s" % (where, _FIX))
    labels = np.array(labels)
    pixels = int(np.prod(_IMAGE_SHAPE))
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8
            and images.ndim == 2 and images.shape[1] == pixels):
        raise UserError("%s: 'data' is not an N x %d array of bytes; %s" % (where, pixels, _FIX))
    if labels.shape != (len(images),):
        raise UserError("%s holds %d images but %d labels; %s"
                        % (where, len(images), labels.size, _FIX))
    if labels.size and (labels.min() < 0 or labels.max() >= _NUM_CLASSES):
        raise UserError("%s holds labels outside 0 to %d; %s" % (where, _NUM_CLASSES - 1, _FIX))
    return images.reshape((-1,) + _IMAGE_SHAPE), labels.astype(np.uint8)


def _read_extracted(directory):
    batches = {}
    for name in TRAIN_BATCHES + (TEST_BATCH,):
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as stream:
                content = stream.read()
        except OSError as exc:
            raise UserError("cannot read %s (%s)" % (path, exc.strerror or exc))
        batches[name] = _load_batch(content, path)
    return batches


def _read_archive(path):
    batches = {}
    try:
        # One pass over the stream, in archive order: no seeking in 160 MB of gzip.
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                name = os.path.basename(member.name)
                if member.isfile() and name in TRAIN_BATCHES + (TEST_BATCH,):
                    content = archive.extractfile(member).read()
                    batches[name] = _load_batch(content, "%s (member %s)" % (path, member.name))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise UserError("%s is truncated or corrupted (%s: %s); %s"
                        % (path, type(exc).__name__, exc, _FIX))
    missing = [name for name in TRAIN_BATCHES + (TEST_BATCH,) if name not in batches]
    if missing:
        raise UserError("%s lacks %s; it is not the official CIFAR-10 python archive; %s"
                        % (path, ", ".join(missing), _FIX))
    return batches


def read_cifar10(path):
    """Read the CIFAR-10 training and test sets.

    Parameters
    ----------
    path : str
        ``cifar-10-python.tar.gz`` (or any tar file with the batches), or a
        directory holding the extracted batch files (see :func:`find_cifar10`).

    Returns
    -------
    train_x : numpy.ndarray of uint8, shape (N, 3, 32, 32)
        The training batches 1 to 5, in order.
    train_y : numpy.ndarray of uint8, shape (N,)
    test_x : numpy.ndarray of uint8, shape (M, 3, 32, 32)
    test_y : numpy.ndarray of uint8, shape (M,)

    Raises
    ------
    errors.UserError
        When the archive is truncated or corrupted, a batch is missing or not a
        valid batch (wrong type, shape, label range, image and label counts
        that disagree); the message names the file.
    """
    batches = _read_extracted(path) if os.path.isdir(path) else _read_archive(path)
    train_x = np.concatenate([batches[name][0] for name in TRAIN_BATCHES])
    train_y = np.concatenate([batches[name][1] for name in TRAIN_BATCHES])
    test_x, test_y = batches[TEST_BATCH]
    return train_x, train_y, test_x, test_y
