"""
Reading the IDX files of MNIST and Fashion-MNIST, with structural checks.

.. autosummary::
    :nosignatures:

    read_idx
    read_images
    read_labels

The format (http://yann.lecun.com/exdb/mnist/): a big-endian magic number
``0x0000TTNN`` (TT the element type, 0x08 for unsigned bytes; NN the number of
dimensions), NN big-endian uint32 sizes, then the elements in C order.  A file
may be gzip-compressed (the official downloads are) or not; which one is told
by its first bytes, not its name.

Every problem with a file raises :class:`errors.UserError` naming it: not
gzip-readable (truncated or corrupted), a wrong magic number, a payload longer
or shorter than its header says, the wrong image size, a label out of range.

Examples
--------
>>> from data.idx import read_images, read_labels
>>> images = read_images("mnist/train-images-idx3-ubyte.gz")  # doctest: +SKIP
>>> images.shape, images.dtype                                 # doctest: +SKIP
((60000, 28, 28), dtype('uint8'))
"""
import contextlib
import gzip
import struct
import zlib

import numpy as np

from errors import UserError

__all__ = ["read_idx", "read_images", "read_labels"]

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_FIX = ("delete or replace it with the official file (it is downloaded again when "
        "missing)")


#: Bytes read from a file at a time: the payload is never inflated past what the header and
#: the caller's bound allow (a small gzip file can inflate to gigabytes).
_CHUNK = 1 << 20


@contextlib.contextmanager
def _open(path):
    """The file as a binary stream, gunzipped when it is a gzip file."""
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise UserError("cannot read %s (%s)" % (path, exc.strerror or exc))
    with raw:
        if raw.read(2) != _GZIP_MAGIC:
            raw.seek(0)
            yield raw
            return
        raw.seek(0)
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            yield stream


def _read(stream, count, path):
    """Up to ``count`` bytes of the stream, chunk by chunk."""
    parts, left = [], count
    try:
        while left > 0:
            part = stream.read(min(left, _CHUNK))
            if not part:
                break
            parts.append(part)
            left -= len(part)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError("%s is truncated or corrupted (gzip: %s); %s" % (path, exc, _FIX))
    return b"".join(parts)


def read_idx(path, max_items=None):
    """Read an IDX file of unsigned bytes.

    Parameters
    ----------
    path : str
        The file, gzip-compressed or not.
    max_items : int or None
        The most items (the first dimension) the file may hold: a header
        promising more is refused before its payload is read.

    Returns
    -------
    numpy.ndarray of uint8
        The array, shaped as the header says.

    Raises
    ------
    errors.UserError
        When the file is unreadable, not an IDX file of unsigned bytes, its
        payload does not have the length its header promises, or its header
        promises more than ``max_items`` items.
    """
    with _open(path) as stream:
        magic = _read(stream, 4, path)
        if len(magic) < 4:
            raise UserError("%s is not an IDX file (only %d bytes); %s"
                            % (path, len(magic), _FIX))
        zeros, element_type, ndim = struct.unpack(">HBB", magic)
        if zeros != 0 or element_type != _UBYTE or ndim == 0:
            raise UserError("%s is not an IDX file of unsigned bytes (magic number 0x%s); %s"
                            % (path, magic.hex(), _FIX))
        sizes = _read(stream, 4 * ndim, path)
        if len(sizes) < 4 * ndim:
            raise UserError("%s is truncated inside its header; %s" % (path, _FIX))
        shape = struct.unpack(">%dI" % ndim, sizes)
        if max_items is not None and shape[0] > max_items:
            raise UserError("%s's header promises %d items, at most %d are expected; %s"
                            % (path, shape[0], max_items, _FIX))
        expected = int(np.prod(shape, dtype=np.int64))
        content = _read(stream, expected, path)
        # A chunk past the payload: enough to tell trailing bytes, or a gzip stream that is
        # truncated or corrupted further on, without inflating all of it.
        trailing = _read(stream, _CHUNK, path)
    if len(content) != expected or trailing:
        raise UserError("%s holds %s bytes of data but its header %s promises %d (%s); %s"
                        % (path, len(content) if not trailing else "more", "x".join(
                            map(str, shape)), expected,
                           "trailing bytes" if trailing else "truncated", _FIX))
    return np.frombuffer(content, dtype=np.uint8).reshape(shape)


def _check_ndim(path, array, ndim, magic, what):
    if array.ndim != ndim:
        raise UserError("%s has %d dimensions, an IDX file of %s has %d (magic number %s); "
                        "is it the right file? %s" % (path, array.ndim, what, ndim, magic, _FIX))


def read_images(path, image_shape=(28, 28), max_count=None):
    """Read an IDX file of images (magic number 0x00000803).

    Parameters
    ----------
    path : str
        The file, gzip-compressed or not.
    image_shape : (int, int)
        The size every image must have.
    max_count : int or None
        The most images it may hold (read no further).

    Returns
    -------
    numpy.ndarray of uint8, shape (N, H, W)

    Raises
    ------
    errors.UserError
        As :func:`read_idx`, and when the images are not 3-d or not of
        ``image_shape``.
    """
    images = read_idx(path, max_count)
    _check_ndim(path, images, 3, "0x00000803", "images")
    if images.shape[1:] != tuple(image_shape):
        raise UserError("%s holds images of %dx%d pixels, expected %dx%d; %s"
                        % ((path,) + images.shape[1:] + tuple(image_shape) + (_FIX,)))
    return images


def read_labels(path, num_classes=10, max_count=None):
    """Read an IDX file of labels (magic number 0x00000801).

    Parameters
    ----------
    path : str
        The file, gzip-compressed or not.
    num_classes : int
        Labels must lie in ``[0, num_classes)``.
    max_count : int or None
        The most labels it may hold (read no further).

    Returns
    -------
    numpy.ndarray of uint8, shape (N,)

    Raises
    ------
    errors.UserError
        As :func:`read_idx`, and when the labels are not 1-d or out of range.
    """
    labels = read_idx(path, max_count)
    _check_ndim(path, labels, 1, "0x00000801", "labels")
    if labels.size and labels.max() >= num_classes:
        raise UserError("%s holds the label %d, expected labels 0 to %d; %s"
                        % (path, labels.max(), num_classes - 1, _FIX))
    return labels
