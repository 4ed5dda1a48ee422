"""
The data sets of the experiments, found or downloaded, checked and preprocessed.

.. autosummary::
    :nosignatures:

    Dataset
    DATASETS
    load_dataset
    find_files

Preprocessing is that of the original experiments (see
``reference/README.md``):

- MNIST and Fashion-MNIST: pixels / 256; training on the first 50,000 images
  of the official training set, validation on its last 10,000; the mean image of
  the 50,000 training images subtracted from every set.
- CIFAR-10: pixels / 255 in float64, minus the per-pixel mean image of the
  50,000 training images (float64), subtracted from the training and the test
  images, then float32; validation on the official test set.  The centring can
  be turned off (``cifar_centering=False``): the original's final commit no
  longer subtracts the mean, but every earlier one does, and those wrote the
  logs the port is compared with (``reference/README.md``).

Inputs are float32 in NCHW layout, labels int32.  The official test sets stay
available as ``test_x``, ``test_y``.

Where the files are looked for, in ``data_dir`` (see
:func:`data.download.default_data_dir` for its default): first
``data_dir/NAME/``, then ``data_dir`` itself.  MNIST files may be gzipped or
not; CIFAR-10 may be the archive or the extracted ``cifar-10-batches-py/``.
Files found there are used as they are, without network access.  One that does
not match the published checksum (or, uncompressed, has none) is used with a
warning naming it, after the structural checks every file gets (magic numbers,
counts, shapes, label range).  Missing files are downloaded into
``data_dir/NAME/`` when ``download`` is true.

Examples
--------
>>> import data
>>> mnist = data.load_dataset("mnist")                      # doctest: +SKIP
>>> mnist.train_x.shape, mnist.val_x.shape, mnist.input_shape  # doctest: +SKIP
((50000, 1, 28, 28), (10000, 1, 28, 28), (1, 28, 28))
"""
import dataclasses
import hashlib
import os
import warnings

import numpy as np

from data import cifar10, idx
from data.download import SOURCES, default_data_dir, download as download_file, file_checksum
from errors import UserError

__all__ = ["Dataset", "DATASETS", "DataWarning", "load_dataset", "find_files", "content_digest"]

#: The data sets load_dataset knows.
DATASETS = ("mnist", "fashion_mnist", "cifar10")

#: Images in the official (training, test) files; other counts are refused.
OFFICIAL_SIZES = {"mnist": (60000, 10000), "fashion_mnist": (60000, 10000),
                  "cifar10": (50000, 10000)}
#: MNIST's validation set: the last this many images of the training file.
MNIST_VALIDATION_SIZE = 10000
_NUM_CLASSES = 10
_MNIST_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
                "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


class DataWarning(UserWarning):
    """A local data file is used although it could not be verified by checksum."""


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A preprocessed data set, split as in the original experiments.

    Attributes
    ----------
    name : str
        ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
    train_x, val_x, test_x : numpy.ndarray of float32, shape (N, C, H, W)
        Preprocessed inputs.  For CIFAR-10, ``val_x`` *is* ``test_x`` (the same
        array: the original validated on the test set).
    train_y, val_y, test_y : numpy.ndarray of int32, shape (N,)
        Class labels.
    num_classes : int
    input_shape : (int, int, int)
        (C, H, W) of one input.
    source : dict or None
        What the arrays were made from (see
        :func:`experiments.store.datasource.describe_data`):
        ``content`` (SHA-256 of the decoded images and labels of every split,
        before preprocessing: equal for the official files and any
        re-compression of them) and ``files`` (``official`` when every file
        matched its published checksum, ``other`` when one did not, ``no
        checksum`` when none is published for its form).
    train_pixels : Pixels or None
        ``train_x`` as the bytes it was computed from, where it is exactly
        recomputable from them (MNIST-like sets): a batch of runs gathers
        each run's minibatches as bytes, a quarter of the memory traffic.
    """
    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    input_shape: tuple
    source: dict = None
    train_pixels: "Pixels" = None

    def __repr__(self):
        return "Dataset(%s: train %d, val %d, test %d, input_shape=%s, num_classes=%d)" % (
            self.name, len(self.train_y), len(self.val_y), len(self.test_y),
            self.input_shape, self.num_classes)


@dataclasses.dataclass(frozen=True, eq=False)
class Pixels:
    """Inputs as bytes, and how they were made from them.

    ``float32(pixels) / divisor - offset``, each operation in float32 (exactly
    rounded, so computed anywhere it gives the inputs bit for bit).

    Attributes
    ----------
    pixels : numpy.ndarray of uint8, shape (N, C, H, W)
    divisor : float
    offset : numpy.ndarray of float32, shape (C, H, W)
    """
    pixels: np.ndarray
    divisor: float
    offset: np.ndarray

    def inputs(self, pixels=None):
        """The float32 inputs of ``pixels`` (by default all of them), as the loader made them."""
        inputs = _to_float(np.asarray(self.pixels if pixels is None else pixels), self.divisor)
        inputs -= self.offset
        return inputs


def _official_file(name, filename):
    for remote in SOURCES[name]:
        if remote.filename == filename:
            return remote
    return None


def _warn_unless_official(name, path):
    """Warn when ``path`` cannot be verified against the published checksum.

    Returns ``official``, ``other`` or ``no checksum`` (see :class:`Dataset`'s ``source``).
    """
    remote = _official_file(name, os.path.basename(path)) if os.path.isfile(path) else None
    if remote is None:
        warnings.warn("%s cannot be checked by checksum (published for the official %s "
                      "only); using it after structural checks"
                      % (path, ", ".join(r.filename for r in SOURCES[name])),
                      DataWarning, stacklevel=4)
        return "no checksum"
    if file_checksum(path, remote.algorithm) != remote.digest:
        warnings.warn("%s does not match the official %s checksum %s: it is not the "
                      "official file; using it after structural checks"
                      % (path, remote.algorithm.upper(), remote.digest),
                      DataWarning, stacklevel=4)
        return "other"
    return "official"


def _files_in(name, directory):
    """The data set's files if ``directory`` holds them all, else None."""
    if name == "cifar10":
        found = cifar10.find_cifar10(directory)
        return None if found is None else {"cifar10": found}
    found = {}
    for key, stem in _MNIST_FILES.items():
        for filename in (stem + ".gz", stem):
            if os.path.isfile(os.path.join(directory, filename)):
                found[key] = os.path.join(directory, filename)
                break
    return found if len(found) == len(_MNIST_FILES) else None


def find_files(name, data_dir):
    """The local files of a data set, if ``data_dir`` has them all.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    data_dir : str
        Searched in ``data_dir/name/``, then in ``data_dir``.

    Returns
    -------
    dict or None
        MNIST-like: ``{"train_x", "train_y", "test_x", "test_y"}`` to paths;
        CIFAR-10: ``{"cifar10": path}`` (archive or directory of batches).
        None when neither directory holds the complete set.
    """
    for directory in (os.path.join(data_dir, name), data_dir):
        files = _files_in(name, directory)
        if files is not None:
            return files
    return None


def _obtain_files(name, data_dir, download):
    """Local files (checked by checksum, with warnings) or freshly downloaded ones.

    Returns the files and how they compare with the published checksums
    (:class:`Dataset`'s ``source["files"]``).
    """
    files = find_files(name, data_dir)
    target = os.path.join(data_dir, name)
    missing = [] if files is not None else [
        remote for remote in SOURCES[name]
        if not os.path.isfile(os.path.join(target, remote.filename))]
    if missing and not download:
        raise UserError(
            "%s is not in %s (missing %s) and downloading is off; put the official files "
            "there (from %s) or pass --data-dir with a directory that holds them"
            % (name, target, ", ".join(remote.filename for remote in missing),
               " ".join(remote.urls[0] for remote in missing)))
    downloaded = [download_file(remote, target) for remote in missing]
    if files is None:
        files = _files_in(name, target)
    # Downloads were verified on the way in; the rest gets its checksum checked.
    verdicts = set()
    for path in files.values():  # a loop, not a comprehension: the warnings' stacklevel
        verdicts.add("official" if path in downloaded else _warn_unless_official(name, path))
    for verdict in ("other", "no checksum", "official"):
        if verdict in verdicts:
            return files, verdict


def _check_count(path, count, expected):
    if count != expected:
        raise UserError("%s holds %d images, the official file holds %d; delete or replace "
                        "it with the official file" % (path, count, expected))


def _read_mnist_like(files, name):
    parts = {}
    for split, expected in zip(("train", "test"), OFFICIAL_SIZES[name]):
        images = idx.read_images(files[split + "_x"], max_count=expected)
        labels = idx.read_labels(files[split + "_y"], _NUM_CLASSES, max_count=expected)
        if len(images) != len(labels):
            raise UserError("%s holds %d images but %s holds %d labels; they are not a pair "
                            "of official files, replace them"
                            % (files[split + "_x"], len(images), files[split + "_y"],
                               len(labels)))
        parts[split] = images, labels
    for split, expected in zip(("train", "test"), OFFICIAL_SIZES[name]):
        _check_count(files[split + "_x"], len(parts[split][0]), expected)
    return parts["train"] + parts["test"]


def _to_float(images, scale):
    """images / scale as float32 NCHW, computed in float32 like the original."""
    inputs = images.astype(np.float32)
    if inputs.ndim == 3:  # IDX images have no channel axis
        inputs = inputs[:, np.newaxis]
    inputs /= np.float32(scale)
    return inputs


def _preprocess_mnist_like(name, train_images, train_labels, test_images, test_labels):
    inputs = _to_float(train_images, 256)
    test_inputs = _to_float(test_images, 256)
    num_train = len(inputs) - MNIST_VALIDATION_SIZE
    # The mean image of the images trained on, accumulated in float64 (more exact
    # than a float32 sum over 50,000 values), then subtracted in float32.
    mean_image = inputs[:num_train].mean(axis=0, dtype=np.float64).astype(np.float32)
    inputs -= mean_image
    test_inputs -= mean_image
    labels = train_labels.astype(np.int32)
    pixels = Pixels(np.ascontiguousarray(train_images[:num_train].reshape(
        inputs[:num_train].shape), dtype=np.uint8), 256, mean_image)
    return Dataset(name=name, train_x=inputs[:num_train], train_y=labels[:num_train],
                   val_x=inputs[num_train:], val_y=labels[num_train:],
                   test_x=test_inputs, test_y=test_labels.astype(np.int32),
                   num_classes=_NUM_CLASSES, input_shape=inputs.shape[1:],
                   train_pixels=pixels)


def _centred(images, mean_image, chunk=5000):
    """float32 of (images / 255 - mean_image), computed in float64 as the original did.

    In chunks, so that the float64 intermediate of 50,000 images (1.2 GB) never
    exists at once.
    """
    inputs = np.empty(images.shape, dtype=np.float32)
    for start in range(0, len(images), chunk):
        inputs[start:start + chunk] = images[start:start + chunk] / 255. - mean_image
    return inputs


def _training_mean_image(images):
    """The per-pixel mean of images / 255 in float64, bit for bit the original's.

    NumPy's ``(images / 255.).mean(axis=0)`` adds the images one after the
    other; so does this loop, without the 1.2 GB float64 copy.
    """
    total = np.zeros(images.shape[1:], dtype=np.float64)
    for image in images:
        total += image / 255.
    return total / len(images)


def _preprocess_cifar10(train_images, train_labels, test_images, test_labels, centering=True):
    if centering:
        mean_image = _training_mean_image(train_images)
        train_inputs = _centred(train_images, mean_image)
        test_inputs = _centred(test_images, mean_image)
    else:
        train_inputs, test_inputs = _to_float(train_images, 255), _to_float(test_images, 255)
    test_targets = test_labels.astype(np.int32)
    return Dataset(name="cifar10", train_x=train_inputs,
                   train_y=train_labels.astype(np.int32), val_x=test_inputs,
                   val_y=test_targets, test_x=test_inputs, test_y=test_targets,
                   num_classes=_NUM_CLASSES, input_shape=test_inputs.shape[1:])


def load_dataset(name, data_dir=None, download=True, cifar_centering=True):
    """Load a data set, preprocessed and split as in the original experiments.

    Parameters
    ----------
    name : str
        ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
    data_dir : str or None
        Where the files are (``data_dir/name/`` or ``data_dir``) or go; None for
        :func:`data.download.default_data_dir` (``$AMSGRAD_DATA``, else the
        per-user cache).
    download : bool
        Download missing files (into ``data_dir/name/``).  With False, only local
        files are used.
    cifar_centering : bool
        CIFAR-10 only: subtract the training images' per-pixel mean (the
        protocol of the original's logs); False keeps pixels / 255, as the
        original's final commit does.  MNIST-like sets are always centred.

    Returns
    -------
    Dataset
        Inputs float32 NCHW, labels int32: MNIST-like 50,000 training and 10,000
        validation images (the training file's first 50,000 and last 10,000),
        10,000 test images; CIFAR-10 50,000 training images and the 10,000 test
        images as validation and test set.

    Raises
    ------
    errors.UserError
        For an unknown name, missing files that cannot be downloaded, and files
        that are damaged or not the official ones (the message names the file
        and says what to do).

    Warns
    -----
    DataWarning
        For each local file used that does not match the published checksum.

    Notes
    -----
    Memory: CIFAR-10 takes about 740 MB as float32 (briefly 1 GB while
    converting); MNIST about 220 MB.
    """
    if name not in DATASETS:
        raise UserError("unknown data set %r; choose one of %s" % (name, ", ".join(DATASETS)))
    data_dir = os.path.abspath(os.path.expanduser(data_dir or default_data_dir()))
    files, verdict = _obtain_files(name, data_dir, download)
    if name == "cifar10":
        path = files["cifar10"]
        arrays = cifar10.read_cifar10(path)
        _check_count(path + " (training batches)", len(arrays[0]), OFFICIAL_SIZES[name][0])
        _check_count(path + " (test batch)", len(arrays[2]), OFFICIAL_SIZES[name][1])
        dataset = _preprocess_cifar10(*arrays, centering=cifar_centering)
    else:
        arrays = _read_mnist_like(files, name)
        dataset = _preprocess_mnist_like(name, *arrays)
    source = {"content": content_digest(arrays), "files": verdict}
    return dataclasses.replace(dataset, source=source)


def content_digest(arrays):
    """SHA-256 (hex) of arrays' dtypes, shapes and bytes: a data set's decoded content."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(("%s%s" % (array.dtype.str, array.shape)).encode("ascii"))
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()
