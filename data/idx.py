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


def _read_bytes(path):
    """The file's content, gunzipped when it is a gzip file."""
    try:
        with open(path, "rb") as stream:
            content = stream.read()
    except OSError as exc:
        raise UserError("cannot read %s (%s)" % (path, exc.strerror or exc))
    if not content.startswith(_GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError("%s is truncated or corrupted (gzip: %s); %s" % (path, exc, _FIX))


def read_idx(path):
    """Read an IDX file of unsigned bytes.

    Parameters
    ----------
    path : str
        The file, gzip-compressed or not.

    Returns
    -------
    numpy.ndarray of uint8
        The array, shaped as the header says.

    Raises
    ------
    errors.UserError
        When the file is unreadable, not an IDX file of unsigned bytes, or its
        payload does not have the length its header promises.
    """
    content = _read_bytes(path)
    if len(content) < 4:
        raise UserError("%s is not an IDX file (only %d bytes); %s" % (path, len(content), _FIX))
    zeros, element_type, ndim = struct.unpack(">HBB", content[:4])
    if zeros != 0 or element_type != _UBYTE or ndim == 0:
        raise UserError("%s is not an IDX file of unsigned bytes (magic number 0x%s); %s"
                        % (path, content[:4].hex(), _FIX))
    header_bytes = 4 + 4 * ndim
    if len(content) < header_bytes:
        raise UserError("%s is truncated inside its header; %s" % (path, _FIX))
    shape = struct.unpack(">%dI" % ndim, content[4:header_bytes])
    expected = int(np.prod(shape, dtype=np.int64))
    payload = len(content) - header_bytes
    if payload != expected:
        raise UserError("%s holds %d bytes of data but its header %s promises %d (%s); %s"
                        % (path, payload, "x".join(map(str, shape)), expected,
                           "truncated" if payload < expected else "trailing bytes", _FIX))
    return np.frombuffer(content, dtype=np.uint8, offset=header_bytes).reshape(shape)


def _check_ndim(path, array, ndim, magic, what):
    if array.ndim != ndim:
        raise UserError("%s has %d dimensions, an IDX file of %s has %d (magic number %s); "
                        "is it the right file? %s" % (path, array.ndim, what, ndim, magic, _FIX))


def read_images(path, image_shape=(28, 28)):
    """Read an IDX file of images (magic number 0x00000803).

    Parameters
    ----------
    path : str
        The file, gzip-compressed or not.
    image_shape : (int, int)
        The size every image must have.

    Returns
    -------
    numpy.ndarray of uint8, shape (N, H, W)

    Raises
    ------
    errors.UserError
        As :func:`read_idx`, and when the images are not 3-d or not of
        ``image_shape``.
    """
    images = read_idx(path)
    _check_ndim(path, images, 3, "0x00000803", "images")
    if images.shape[1:] != tuple(image_shape):
        raise UserError("%s holds images of %dx%d pixels, expected %dx%d; %s"
                        % ((path,) + images.shape[1:] + tuple(image_shape) + (_FIX,)))
    return images


def read_labels(path, num_classes=10):
    """Read an IDX file of labels (magic number 0x00000801).

    Parameters
    ----------
    path : str
        The file, gzip-compressed or not.
    num_classes : int
        Labels must lie in ``[0, num_classes)``.

    Returns
    -------
    numpy.ndarray of uint8, shape (N,)

    Raises
    ------
    errors.UserError
        As :func:`read_idx`, and when the labels are not 1-d or out of range.
    """
    labels = read_idx(path)
    _check_ndim(path, labels, 1, "0x00000801", "labels")
    if labels.size and labels.max() >= num_classes:
        raise UserError("%s holds the label %d, expected labels 0 to %d; %s"
                        % (path, labels.max(), num_classes - 1, _FIX))
    return labels
