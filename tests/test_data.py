"""Tests of data/: IDX and CIFAR-10 parsing, checks of bad files, the download path
against a local HTTP server, the original preprocessing and the minibatches.

Every file is written here from the formats' descriptions (tests/data_fixtures.py); the
expected values come from NumPy float64 arithmetic on the arrays written, and, for the
real MNIST, from its known statistics."""
import gzip
import hashlib
import os
import pickle
import warnings

import numpy as np
import pytest

import data
from data import batches, cifar10, datasets, download, idx
from data.download import RemoteFile
from errors import UserError

import data_fixtures as fx


# ---------------------------------------------------------------- helpers

def listing(directory):
    """Every file under directory (relative paths), hidden ones included."""
    return sorted(os.path.relpath(os.path.join(root, name), directory)
                  for root, _, names in os.walk(directory) for name in names)


@pytest.fixture
def tiny_sizes(monkeypatch):
    """Official counts scaled down: MNIST 40 training images (30 + 10 validation), 12
    test; CIFAR-10 5 batches of 4 training images, 6 test images."""
    monkeypatch.setattr(datasets, "OFFICIAL_SIZES", {"mnist": (40, 12),
                                                     "fashion_mnist": (40, 12),
                                                     "cifar10": (20, 6)})
    monkeypatch.setattr(datasets, "MNIST_VALIDATION_SIZE", 10)


@pytest.fixture
def server():
    file_server = fx.FileServer()
    yield file_server
    file_server.stop()


def load_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", data.DataWarning)
        return data.load_dataset(*args, **kwargs)


# ---------------------------------------------------------------- IDX files

@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_returns_what_was_written(tmp_path, compress):
    images = np.random.RandomState(1).randint(0, 256, (7, 28, 28)).astype(np.uint8)
    content = fx.idx_bytes(images)
    path = fx.write_file(str(tmp_path / "images"), gzip.compress(content) if compress
                         else content)
    read = idx.read_images(path)
    assert read.dtype == np.uint8 and read.shape == (7, 28, 28)
    np.testing.assert_array_equal(read, images)
    labels = np.array([0, 9, 3], np.uint8)
    path = fx.write_file(str(tmp_path / "labels"), fx.idx_bytes(labels))
    np.testing.assert_array_equal(idx.read_labels(path), labels)


def _bad_idx_files():
    images = np.zeros((3, 28, 28), np.uint8)
    good = fx.idx_bytes(images)
    compressed = gzip.compress(good + os.urandom(3000))  # random bytes: deflate keeps them
    middle = len(compressed) // 2
    return {
        "wrong magic": (fx.idx_bytes(images, type_code=0x0D), "magic number 0x00000d03"),
        "empty": (b"", "only 0 bytes"),
        "truncated payload": (good[:-5], "truncated"),
        "trailing bytes": (good + b"\0", "trailing bytes"),
        "truncated gzip": (compressed[:middle], "truncated or corrupted"),
        "corrupted gzip": (compressed[:middle] + bytes(b ^ 0xFF for b in compressed[middle:
                                                                               middle + 64])
                           + compressed[middle + 64:], "truncated or corrupted"),
        "3x3 images": (fx.idx_bytes(np.zeros((2, 3, 3), np.uint8)), "3x3 pixels"),
        "labels as images": (fx.idx_bytes(np.zeros(4, np.uint8)), "1 dimensions"),
    }


@pytest.mark.parametrize("case", sorted(_bad_idx_files()))
def test_bad_idx_file_is_refused_by_name_and_kept(tmp_path, case):
    content, expected = _bad_idx_files()[case]
    path = fx.write_file(str(tmp_path / "train-images-idx3-ubyte.gz"), content)
    with pytest.raises(UserError) as error:
        idx.read_images(path)
    message = str(error.value)
    assert path in message and expected in message and "replace" in message
    with open(path, "rb") as stream:  # the user's file is left alone
        assert stream.read() == content


def test_label_out_of_range_is_refused(tmp_path):
    path = fx.write_file(str(tmp_path / "labels"), fx.idx_bytes(np.array([1, 10], np.uint8)))
    with pytest.raises(UserError, match="holds the label 10, expected labels 0 to 9"):
        idx.read_labels(path)


# ---------------------------------------------------------------- CIFAR-10 files

@pytest.mark.parametrize("layout", ["archive", "extracted", "flat"])
def test_read_cifar10_layouts_give_nchw_images_in_batch_order(tmp_path, layout):
    arrays = fx.write_cifar(str(tmp_path), per_batch=3, test_size=4, layout=layout)
    found = cifar10.find_cifar10(str(tmp_path))
    assert found.endswith({"archive": "cifar-10-python.tar.gz",
                           "extracted": "cifar-10-batches-py", "flat": str(tmp_path)}[layout])
    train_x, train_y, test_x, test_y = cifar10.read_cifar10(found)
    assert train_x.shape == (15, 3, 32, 32) and test_x.shape == (4, 3, 32, 32)
    # Pixel (channel c, row h, column w) is byte c*1024 + h*32 + w of the image's row.
    for c, h, w in [(0, 0, 0), (0, 0, 31), (1, 2, 5), (2, 31, 0), (2, 31, 31)]:
        np.testing.assert_array_equal(train_x[:, c, h, w],
                                      arrays["train_x"][:, c * 1024 + h * 32 + w])
        np.testing.assert_array_equal(test_x[:, c, h, w],
                                      arrays["test_x"][:, c * 1024 + h * 32 + w])
    np.testing.assert_array_equal(train_y, arrays["train_y"])
    np.testing.assert_array_equal(test_y, arrays["test_y"])


class _Trap:
    """Unpickling this would create the file at its path."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def _bad_cifar_archives(tmp_path):
    members, _ = fx.cifar_file_bytes(per_batch=2, test_size=2)
    archive = fx.tar_gz_bytes(members)
    without_test = {k: v for k, v in members.items() if k != "test_batch"}
    rows = np.zeros((2, 3072), np.uint8)
    marker = str(tmp_path / "code-ran")
    return marker, {
        "truncated archive": (archive[:len(archive) // 2], "truncated or corrupted"),
        "not an archive": (b"<html>Not Found</html>" * 10, "truncated or corrupted"),
        "missing batch": (fx.tar_gz_bytes(without_test), "lacks test_batch"),
        "wrong row length": (fx.tar_gz_bytes(dict(members, test_batch=fx.cifar_batch_bytes(
            np.zeros((2, 100), np.uint8), [0, 1]))), "is not an N x 3072 array"),
        "label count": (fx.tar_gz_bytes(dict(members, test_batch=fx.cifar_batch_bytes(
            rows, [0, 1, 2]))), "holds 2 images but 3 labels"),
        "label range": (fx.tar_gz_bytes(dict(members, test_batch=fx.cifar_batch_bytes(
            rows, [0, 10]))), "labels outside 0 to 9"),
        "code in pickle": (fx.tar_gz_bytes(dict(members, data_batch_3=pickle.dumps(
            {b"data": _Trap(marker)}, protocol=2))), "refusing to load it"),
    }


@pytest.mark.parametrize("case", ["truncated archive", "not an archive", "missing batch",
                                  "wrong row length", "label count", "label range",
                                  "code in pickle"])
def test_bad_cifar10_archive_is_refused_by_name_and_kept(tmp_path, case):
    marker, cases = _bad_cifar_archives(tmp_path)
    content, expected = cases[case]
    path = fx.write_file(str(tmp_path / "cifar-10-python.tar.gz"), content)
    with pytest.raises(UserError) as error:
        cifar10.read_cifar10(path)
    assert path in str(error.value) and expected in str(error.value)
    assert not os.path.exists(marker)
    with open(path, "rb") as stream:
        assert stream.read() == content


def test_bad_extracted_batch_is_named(tmp_path):
    fx.write_cifar(str(tmp_path), per_batch=2, test_size=2, layout="extracted")
    path = str(tmp_path / "cifar-10-batches-py" / "data_batch_2")
    fx.write_file(path, b"\x80\x02}q\x00")  # a pickle cut off after its first bytes
    with pytest.raises(UserError, match="data_batch_2 is not a readable CIFAR-10 batch"):
        cifar10.read_cifar10(str(tmp_path / "cifar-10-batches-py"))


def python2_batch_bytes(rows, labels):
    """A batch as the official files hold it: Python 2's cPickle, protocol 2, assembled
    opcode by opcode (str as BINSTRING, numpy's reduce of uint8 as numpy wrote it then)."""
    def string(text):  # SHORT_BINSTRING: a Python 2 str, bytes under encoding='bytes'
        return b"U" + bytes([len(text)]) + text

    rows = np.ascontiguousarray(rows, np.uint8)
    shape = b"".join(b"J" + int(n).to_bytes(4, "little") for n in rows.shape)
    array = (b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85"
             + string(b"b") + b"\x87R(K\x01(" + shape + b"tcnumpy\ndtype\n" + string(b"u1")
             + b"K\x00K\x01\x87R(K\x03" + string(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff"
             b"\xffK\x00tb\x89T" + len(rows.tobytes()).to_bytes(4, "little") + rows.tobytes()
             + b"tb")
    label_list = b"](" + b"".join(b"K" + bytes([int(k)]) for k in labels) + b"e"
    return (b"\x80\x02}(" + string(b"data") + array + string(b"labels") + label_list
            + string(b"batch_label") + string(b"training batch 1 of 5") + b"u.")


def test_python2_batches_as_the_official_files_hold_them_are_read(tmp_path):
    rng = np.random.RandomState(3)
    rows, labels = rng.randint(0, 256, (3, 3072)).astype(np.uint8), [0, 9, 4]
    content = python2_batch_bytes(rows, labels)
    # The hand-assembled pickle is what it claims: plain pickle reads it as such.
    plain = pickle.loads(content, encoding="bytes")
    np.testing.assert_array_equal(plain[b"data"], rows)
    directory = tmp_path / "cifar-10-batches-py"
    for name in cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,):
        fx.write_file(str(directory / name), content)
    train_x, train_y, test_x, test_y = cifar10.read_cifar10(str(directory))
    np.testing.assert_array_equal(test_x, rows.reshape(3, 3, 32, 32))
    assert test_y.tolist() == labels and train_x.shape == (15, 3, 32, 32)


def hex_bomb():
    """A data_batch_1 (about 300 bytes, protocol 2) whose 'data' is b'x' hex-encoded 40
    times by _codecs.encode: 2^41 bytes asked for."""
    levels = 40
    value = b"h\x01" * levels + b"C\x01x" + b"h\x02\x86R" * levels
    return (b"\x80\x02c_codecs\nencode\nq\x01X\x03\x00\x00\x00hexq\x020}(C\x04data" + value
            + b"C\x06labels]u.")


def nested_labels():
    """'labels' as 32 levels of lists that share their items: a few hundred bytes, which
    np.asarray would make an array of 2^32 entries."""
    labels = [0, 0]
    for _ in range(31):
        labels = [labels, labels]
    return pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": labels},
                        protocol=2)


def huge_reconstruct():
    """numpy's own opcodes with the shape of _reconstruct's empty array made 2^40."""
    content = fx.cifar_batch_bytes(np.zeros((2, 3072), np.uint8), [0, 1])
    empty_shape = b"K\x00\x85"  # (0,)
    assert content.count(empty_shape) == 1
    return content.replace(empty_shape, b"\x8a\x06" + (2 ** 40).to_bytes(6, "little") + b"\x85")


BOMB_CHECK = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # the old loader dies, not us
from data import cifar10
from errors import UserError
start = time.perf_counter()
try:
    cifar10.read_cifar10(sys.argv[1])
except UserError as exc:
    # VmHWM is this program's own peak; ru_maxrss would count the forking pytest's size.
    peak_kb = [int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:")][0]
    print("refused in %.3f s, %d MB peak: %s" % (time.perf_counter() - start, peak_kb >> 10,
                                                 exc))
"""


@pytest.mark.parametrize("bomb", [hex_bomb, nested_labels, huge_reconstruct])
def test_a_batch_that_asks_for_more_memory_than_it_holds_is_refused(tmp_path, bomb):
    import subprocess
    import sys
    content = bomb()
    assert len(content) < 30000
    fx.write_cifar(str(tmp_path), per_batch=2, test_size=2, layout="extracted")
    fx.write_file(str(tmp_path / "cifar-10-batches-py" / "data_batch_1"), content)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    completed = subprocess.run(
        [sys.executable, "-c", BOMB_CHECK, str(tmp_path / "cifar-10-batches-py")],
        capture_output=True, text=True, timeout=120, cwd=repo,
        env=dict(os.environ, PYTHONPATH=repo, OPENBLAS_NUM_THREADS="1"))
    words = completed.stdout.split()
    assert completed.returncode == 0 and words[:2] == ["refused", "in"], completed.stderr
    seconds, peak_mb = float(words[2]), int(words[4])
    assert seconds < 1 and peak_mb < 200, completed.stdout
    assert "data_batch_1 is not a readable CIFAR-10 batch" in completed.stdout or \
        "data_batch_1: 'labels' is not a list of integers" in completed.stdout


# ---------------------------------------------------------------- load_dataset

def test_mnist_preprocessing_matches_float64_reference(tmp_path, tiny_sizes):
    arrays = fx.write_mnist(str(tmp_path / "mnist"), num_train=40, num_test=12)
    with pytest.warns(data.DataWarning) as caught:
        dataset = data.load_dataset("mnist", str(tmp_path), download=False)
    # The tiny files are not the official ones: one warning naming each of them.
    warned = " ".join(str(w.message) for w in caught)
    for stem in fx.MNIST_NAMES.values():
        assert str(tmp_path / "mnist" / (stem + ".gz")) + " does not match" in warned
    pixels = arrays["train_x"].astype(np.float64) / 256
    mean_image = pixels[:30].mean(axis=0)
    expected = {"train_x": pixels[:30] - mean_image, "val_x": pixels[30:] - mean_image,
                "test_x": arrays["test_x"] / 256.0 - mean_image}
    for split, values in expected.items():
        inputs = getattr(dataset, split)
        assert inputs.dtype == np.float32 and inputs.shape == (len(values), 1, 28, 28)
        np.testing.assert_allclose(inputs[:, 0], values, rtol=0, atol=1e-6)
    for split, labels in [("train_y", arrays["train_y"][:30]),
                          ("val_y", arrays["train_y"][30:]), ("test_y", arrays["test_y"])]:
        assert getattr(dataset, split).dtype == np.int32
        np.testing.assert_array_equal(getattr(dataset, split), labels)
    assert dataset.name == "mnist" and dataset.num_classes == 10
    assert dataset.input_shape == (1, 28, 28)
    assert abs(dataset.train_x.mean(dtype=np.float64)) < 1e-6


def test_mnist_training_inputs_are_their_bytes_made_again_bit_for_bit(tmp_path, tiny_sizes):
    # A batch of runs gathers the bytes and makes each minibatch's inputs on the device
    # (backends.batched, issue 30): the bytes must be the training images and the recipe
    # the loader's, to the bit.
    arrays = fx.write_mnist(str(tmp_path / "mnist"), num_train=40, num_test=12)
    dataset = load_quietly("mnist", str(tmp_path), download=False)
    pixels = dataset.train_pixels
    assert pixels.pixels.dtype == np.uint8 and pixels.pixels.shape == (30, 1, 28, 28)
    np.testing.assert_array_equal(pixels.pixels[:, 0], arrays["train_x"][:30])
    np.testing.assert_array_equal(pixels.inputs(), dataset.train_x)
    np.testing.assert_array_equal(pixels.inputs(pixels.pixels[[7, 2]]), dataset.train_x[[7, 2]])


def test_uncompressed_files_directly_in_data_dir_are_used(tmp_path, tiny_sizes):
    arrays = fx.write_mnist(str(tmp_path), num_train=40, num_test=12, compress=False)
    with pytest.warns(data.DataWarning, match="cannot be checked by checksum"):
        dataset = data.load_dataset("mnist", str(tmp_path), download=False)
    np.testing.assert_array_equal(dataset.test_y, arrays["test_y"])


def test_name_subdirectory_wins_over_data_dir(tmp_path, tiny_sizes):
    fx.write_mnist(str(tmp_path), num_train=40, num_test=12, seed=1)
    in_subdir = fx.write_mnist(str(tmp_path / "fashion_mnist"), num_train=40, num_test=12,
                               seed=2)
    dataset = load_quietly("fashion_mnist", str(tmp_path), download=False)
    assert dataset.name == "fashion_mnist"
    np.testing.assert_array_equal(dataset.test_y, in_subdir["test_y"])


@pytest.mark.parametrize("layout", ["archive", "extracted"])
def test_cifar10_preprocessing_matches_float64_reference(tmp_path, tiny_sizes, layout):
    """The protocol of the original's logs: pixels / 255 minus the per-pixel mean of the
    training images, the *training* mean subtracted from the test images too."""
    arrays = fx.write_cifar(str(tmp_path / "cifar10"), per_batch=4, test_size=6, layout=layout)
    dataset = load_quietly("cifar10", str(tmp_path), download=False)
    train_mean = (arrays["train_x"] / 255.0).mean(axis=0)
    for split, rows in [("train_x", arrays["train_x"]), ("test_x", arrays["test_x"])]:
        inputs = getattr(dataset, split)
        assert inputs.dtype == np.float32 and inputs.shape == (len(rows), 3, 32, 32)
        np.testing.assert_allclose(inputs.reshape(len(rows), -1), rows / 255.0 - train_mean,
                                   rtol=0, atol=1e-7)
    # Centred: every pixel's mean over the training images is 0 (up to float32 rounding).
    assert np.abs(dataset.train_x.mean(axis=0, dtype=np.float64)).max() < 1e-7
    assert np.abs(dataset.test_x.mean(axis=0, dtype=np.float64)).max() > 0.01
    assert dataset.val_x is dataset.test_x  # the original validated on the test set
    np.testing.assert_array_equal(dataset.val_y, arrays["test_y"])
    np.testing.assert_array_equal(dataset.train_y, arrays["train_y"])
    assert dataset.train_y.dtype == np.int32 and dataset.input_shape == (3, 32, 32)


def test_cifar10_without_centring_is_pixels_over_255(tmp_path, tiny_sizes):
    arrays = fx.write_cifar(str(tmp_path / "cifar10"), per_batch=4, test_size=6,
                            layout="extracted")
    dataset = load_quietly("cifar10", str(tmp_path), download=False, cifar_centering=False)
    for split, rows in [("train_x", arrays["train_x"]), ("test_x", arrays["test_x"])]:
        np.testing.assert_allclose(getattr(dataset, split).reshape(len(rows), -1),
                                   rows / 255.0, rtol=0, atol=1e-7)


def test_cifar10_mean_image_is_the_originals_bit_for_bit():
    """The mean is computed without a float64 copy of all images, yet equals the original's
    ``(images / 255.).mean(axis=0)`` and its float32 cast exactly."""
    images = np.random.RandomState(0).randint(0, 256, (1000, 3, 8, 8)).astype(np.uint8)
    mean_image = datasets._training_mean_image(images)
    reference = (images / 255.).mean(axis=0)
    np.testing.assert_array_equal(mean_image, reference)
    np.testing.assert_array_equal(datasets._centred(images, mean_image, chunk=300),
                                  (images / 255. - reference).astype(np.float32))


def test_cifar10_flips_mirror_the_centred_images(tmp_path, tiny_sizes):
    """The flip comes after the centring (the original flipped the centred arrays): a
    flipped training image is the mirror of (image / 255 - mean), which differs from
    (mirrored image / 255 - mean) because the mean image is not symmetric."""
    arrays = fx.write_cifar(str(tmp_path / "cifar10"), per_batch=4, test_size=6,
                            layout="extracted")
    dataset = load_quietly("cifar10", str(tmp_path), download=False)
    images = arrays["train_x"].reshape(-1, 3, 32, 32) / 255.0
    mean_image = images.mean(axis=0)
    mirrored = 0
    for xb, yb in data.iterate_train_batches(dataset.train_x, dataset.train_y, 4,
                                             np.random.RandomState(1), flip_lr=True):
        for inputs, index in zip(xb, _indices_of(dataset.train_x, xb)):
            centred = images[index] - mean_image
            if np.allclose(inputs, centred, rtol=0, atol=1e-6):
                continue
            np.testing.assert_allclose(inputs, centred[..., ::-1], rtol=0, atol=1e-6)
            assert not np.allclose(inputs, images[index][..., ::-1] - mean_image, atol=1e-3)
            mirrored += 1
    assert mirrored > 0


def _indices_of(train_x, batch):
    """Index in ``train_x`` of each image of ``batch`` (as it is, or mirrored)."""
    flat = train_x.reshape(len(train_x), -1)
    found = []
    for image in batch:
        for candidate in (image, image[..., ::-1]):
            hits = np.flatnonzero((flat == candidate.reshape(1, -1)).all(axis=1))
            if len(hits):
                found.append(hits[0])
                break
    assert len(found) == len(batch)
    return found


def test_file_with_the_official_checksum_loads_without_warning(tmp_path, tiny_sizes,
                                                              monkeypatch):
    fx.write_mnist(str(tmp_path / "mnist"), num_train=40, num_test=12)
    official = tuple(RemoteFile(r.filename, r.urls, "md5", download.file_checksum(
        str(tmp_path / "mnist" / r.filename), "md5")) for r in download.SOURCES["mnist"])
    monkeypatch.setitem(datasets.SOURCES, "mnist", official)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.load_dataset("mnist", str(tmp_path), download=False)


def test_counts_other_than_the_official_ones_are_refused(tmp_path):
    fx.write_mnist(str(tmp_path / "mnist"), num_train=40, num_test=12)
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz holds 40 images, the "
                                        "official file holds 60000"):
        load_quietly("mnist", str(tmp_path), download=False)


def test_image_and_label_counts_that_disagree_name_both_files(tmp_path, tiny_sizes):
    directory = str(tmp_path / "mnist")
    fx.write_mnist(directory, num_train=40, num_test=12)
    fx.write_file(os.path.join(directory, "t10k-labels-idx1-ubyte.gz"),
                  gzip.compress(fx.idx_bytes(np.zeros(11, np.uint8))))
    with pytest.raises(UserError) as error:
        load_quietly("mnist", str(tmp_path), download=False)
    assert "t10k-images-idx3-ubyte.gz holds 12 images but" in str(error.value)
    assert "t10k-labels-idx1-ubyte.gz holds 11 labels" in str(error.value)


def test_missing_files_offline_say_what_to_do_and_write_nothing(tmp_path):
    fx.write_file(str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz"), b"mine")
    before = listing(str(tmp_path))
    with pytest.raises(UserError) as error:
        data.load_dataset("mnist", str(tmp_path), download=False)
    message = str(error.value)
    assert "missing train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, " \
           "t10k-labels-idx1-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message and "--data-dir" in message
    assert listing(str(tmp_path)) == before


def test_unknown_data_set_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown data set 'svhn'; choose one of mnist, "
                                        "fashion_mnist, cifar10"):
        data.load_dataset("svhn", str(tmp_path))


def test_default_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AMSGRAD_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data.default_data_dir() == str(tmp_path / "home/.cache/amsgrad-experiments/data")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert data.default_data_dir() == str(tmp_path / "home/.cache/amsgrad-experiments/data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_data_dir() == str(tmp_path / "xdg/amsgrad-experiments/data")
    monkeypatch.setenv("AMSGRAD_DATA", "~/mine")
    assert data.default_data_dir() == str(tmp_path / "home/mine")


def test_data_dir_argument_wins_over_environment(tmp_path, tiny_sizes, monkeypatch):
    monkeypatch.setenv("AMSGRAD_DATA", str(tmp_path / "empty"))
    arrays = fx.write_mnist(str(tmp_path / "given" / "mnist"), num_train=40, num_test=12)
    dataset = load_quietly("mnist", str(tmp_path / "given"), download=False)
    np.testing.assert_array_equal(dataset.test_y, arrays["test_y"])
    with pytest.raises(UserError, match=str(tmp_path / "empty" / "mnist")):
        data.load_dataset("mnist", download=False)


# ---------------------------------------------------------------- downloads

def remote_file(server, name, content, paths):
    for path in paths:
        server.routes.setdefault(path, fx.Route(content))
    return RemoteFile(name, tuple(server.url + path for path in paths), "md5", fx.md5(content))


def fetch(remote, directory, timeout=5):
    return download.download(remote, directory, session=download.make_session(retries=0),
                             timeout=timeout, progress=False)


def test_download_falls_back_to_the_next_mirror(tmp_path, server):
    content = os.urandom(5000)
    remote = remote_file(server, "f.gz", content, ["/gone/f.gz", "/mirror/f.gz"])
    del server.routes["/gone/f.gz"]
    path = fetch(remote, str(tmp_path / "cache"))
    assert path == str(tmp_path / "cache" / "f.gz")
    with open(path, "rb") as stream:
        assert stream.read() == content
    assert server.requests == ["/gone/f.gz", "/mirror/f.gz"]
    assert listing(str(tmp_path / "cache")) == ["f.gz"]


def test_download_skips_a_mirror_with_the_wrong_bytes(tmp_path, server):
    content = os.urandom(3000)
    remote = remote_file(server, "f.gz", content, ["/bad/f.gz", "/good/f.gz"])
    server.routes["/bad/f.gz"] = fx.Route(content[:-1] + b"?")
    with open(fetch(remote, str(tmp_path)), "rb") as stream:
        assert stream.read() == content
    assert listing(str(tmp_path)) == ["f.gz"]


def test_download_retries_a_server_error_with_a_retrying_session(tmp_path, server):
    content = os.urandom(100)
    remote = remote_file(server, "f.gz", content, ["/flaky/f.gz"])
    server.routes["/flaky/f.gz"].statuses = [503]
    with pytest.raises(UserError, match="503"):
        fetch(remote, str(tmp_path))
    server.routes["/flaky/f.gz"].statuses = [503]
    path = download.download(remote, str(tmp_path), session=download.make_session(retries=1),
                             timeout=5, progress=False)
    with open(path, "rb") as stream:
        assert stream.read() == content


HTML = b"<!DOCTYPE html><html><body>Please sign in</body></html>"


@pytest.mark.parametrize("route, expected", [
    (fx.Route(b"not the file"), "MD5 checksum %s, expected" % fx.md5(b"not the file")),
    (fx.Route(HTML, content_type="text/html; charset=utf-8"), "answered with a web page"),
    (fx.Route(b"\n  " + HTML), "answered with a web page (HTML)"),
    (fx.Route(b"x" * 4000, stall="headers"), "timed out"),
    (fx.Route(b"x" * 4000, stall="body"), "timed out"),
    (fx.Route(b"", status=404), "404"),
], ids=["checksum", "html-content-type", "html-sniffed", "timeout-headers", "timeout-body",
        "not-found"])
def test_failed_download_says_why_leaves_no_partial_and_keeps_user_files(tmp_path, server,
                                                                          route, expected):
    content = os.urandom(4000)
    remote = RemoteFile("f.gz", (server.url + "/f.gz",), "md5", fx.md5(content))
    server.routes["/f.gz"] = route
    mine = fx.write_file(str(tmp_path / "f.gz"), b"the user's own copy")
    with pytest.raises(UserError) as error:
        fetch(remote, str(tmp_path), timeout=0.5)
    message = str(error.value)
    assert message.startswith("could not download f.gz (%s/f.gz: " % server.url)
    assert expected in message and "into %s" % tmp_path in message
    assert listing(str(tmp_path)) == ["f.gz"]
    with open(mine, "rb") as stream:
        assert stream.read() == b"the user's own copy"


def test_missing_data_with_no_network_says_what_to_do(tmp_path):
    remote = RemoteFile("f.gz", ("http://127.0.0.1:9/f.gz",), "md5", "0" * 32)  # discard port
    with pytest.raises(UserError) as error:
        fetch(remote, str(tmp_path / "cache"))
    message = str(error.value)
    assert "http://127.0.0.1:9/f.gz: connection failed" in message
    assert "Download it yourself" in message and "--data-dir" in message
    assert listing(str(tmp_path)) == []


def test_load_dataset_downloads_missing_files_then_works_offline(tmp_path, server,
                                                                 tiny_sizes, monkeypatch):
    arrays = fx.mnist_arrays(40, 12)
    files = fx.mnist_file_bytes(arrays)
    sources = tuple(remote_file(server, name, content, ["/mnist/" + name])
                    for name, content in files.items())
    monkeypatch.setitem(datasets.SOURCES, "mnist", sources)
    cache = tmp_path / "cache"
    # One file is already in the cache: only the three others are downloaded.
    fx.write_file(str(cache / "mnist" / "t10k-labels-idx1-ubyte.gz"),
                  files["t10k-labels-idx1-ubyte.gz"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # downloads and the matching file are verified
        dataset = data.load_dataset("mnist", str(cache))
    assert sorted(server.requests) == sorted("/mnist/" + name for name in files
                                             if not name.startswith("t10k-labels"))
    assert listing(str(cache)) == sorted("mnist/" + name for name in files)
    np.testing.assert_array_equal(dataset.val_y, arrays["train_y"][30:])
    server.stop()
    again = data.load_dataset("mnist", str(cache))
    np.testing.assert_array_equal(again.train_x, dataset.train_x)
    assert len(server.requests) == 3


# ---------------------------------------------------------------- minibatches

def numbered(n, shape=(1, 2, 3)):
    """Inputs whose every value is the example's index; targets = index."""
    x = np.repeat(np.arange(n, dtype=np.float32), int(np.prod(shape))).reshape((n,) + shape)
    return x, np.arange(n, dtype=np.int32)


@pytest.mark.parametrize("n, batch_size, expected", [(50000, 128, 391), (10000, 1024, 10),
                                                     (128, 128, 1), (129, 128, 2),
                                                     (1, 128, 1)])
def test_num_batches_by_hand(n, batch_size, expected):
    assert data.num_batches(n, batch_size) == expected


@pytest.mark.parametrize("n", [300, 256, 5])
def test_training_batches_cover_every_example_once_then_fill_up(n):
    x, y = numbered(n)
    got = list(data.iterate_train_batches(x, y, 128, np.random.RandomState(3)))
    assert len(got) == data.num_batches(n, 128)
    assert all(len(xb) == 128 and len(yb) == 128 for xb, yb in got)
    order = np.concatenate([yb for _, yb in got])
    assert sorted(order[:n]) == list(range(n))  # a permutation of all examples first
    assert len(order) == data.num_batches(n, 128) * 128
    assert np.all((0 <= order[n:]) & (order[n:] < n))  # then training examples
    assert not np.array_equal(order[:n], np.arange(n))
    for xb, yb in got:  # inputs travel with their targets
        np.testing.assert_array_equal(xb[:, 0, 0, 0], yb)


def test_training_batches_are_reproducible_from_the_generator_state():
    x, y = numbered(300)
    rng = np.random.RandomState(7)
    state = rng.get_state()
    first = [yb for _, yb in data.iterate_train_batches(x, y, 128, rng, flip_lr=True)]
    after_full_epoch = rng.get_state()
    rng.set_state(state)
    partial = data.iterate_train_batches(x, y, 128, rng, flip_lr=True)
    np.testing.assert_array_equal(next(partial)[1], first[0])
    # The epoch's draws were all made up front: same state however far it was consumed.
    assert all(np.array_equal(a, b) for a, b in zip(rng.get_state()[1:],
                                                    after_full_epoch[1:]))
    rng.set_state(state)
    again = [yb for _, yb in data.iterate_train_batches(x, y, 128, rng, flip_lr=True)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    second_epoch = [yb for _, yb in data.iterate_train_batches(x, y, 128, rng)]
    assert not np.array_equal(np.concatenate(first), np.concatenate(second_epoch))


def test_flips_are_left_right_per_image_with_probability_one_half():
    n = 2000
    x = np.random.RandomState(0).rand(n, 3, 4, 5).astype(np.float32)
    original = x.copy()
    flipped = []
    for xb, yb in data.iterate_train_batches(x, np.arange(n), 128, np.random.RandomState(1),
                                             flip_lr=True):
        same = np.all(xb == x[yb], axis=(1, 2, 3))
        mirrored = np.all(xb == x[yb][:, :, :, ::-1], axis=(1, 2, 3))
        assert np.all(same | mirrored)
        flipped.append(mirrored)
    fraction = np.concatenate(flipped).mean()
    assert abs(fraction - 0.5) < 0.06  # 5 standard deviations of a binomial mean
    np.testing.assert_array_equal(x, original)
    for xb, yb in data.iterate_train_batches(x, np.arange(n), 128, np.random.RandomState(1)):
        np.testing.assert_array_equal(xb, x[yb])


def test_validation_batches_are_in_order_without_fill():
    x, y = numbered(2500)
    got = list(data.iterate_val_batches(x, y))
    assert [len(yb) for _, yb in got] == [1024, 1024, 452]
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in got]), x)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in got]), y)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_bad_batch_size_is_a_user_error(batch_size):
    x, y = numbered(10)
    with pytest.raises(UserError, match="batch size must be a whole number >= 1"):
        data.iterate_train_batches(x, y, batch_size, np.random.RandomState(0))


# ---------------------------------------------------------------- the real data

def test_real_mnist_has_the_known_statistics(shared_data):
    directory = os.path.join(shared_data, "mnist")
    images = idx.read_images(os.path.join(directory, "train-images-idx3-ubyte.gz"))
    pixels = images / 255.0
    assert images.shape == (60000, 28, 28)
    assert abs(pixels.mean() - 0.1307) < 5e-5 and abs(pixels.std() - 0.3081) < 5e-5
    del pixels
    with pytest.warns(data.DataWarning) as caught:  # not the official gzip bytes
        mnist = data.load_dataset("mnist", shared_data, download=False)
    assert len(caught) == 4 and all("does not match" in str(w.message) for w in caught)
    assert mnist.train_x.shape == (50000, 1, 28, 28) and mnist.val_x.shape == (10000, 1, 28, 28)
    assert mnist.test_x.shape == (10000, 1, 28, 28)
    assert abs(mnist.train_x.mean(dtype=np.float64)) < 1e-6
    # The known class counts of the official training and test files.
    train_counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    all_train = np.concatenate([mnist.train_y, mnist.val_y])
    assert np.bincount(all_train, minlength=10).tolist() == train_counts
    assert np.bincount(mnist.test_y, minlength=10).tolist() == test_counts
    # The validation images are the file's last 10,000, by the original preprocessing.
    np.testing.assert_allclose(mnist.val_x[-1, 0] + (images[:50000].mean(axis=0) / 256),
                               images[-1] / 256.0, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_shared_cifar10_look_alike_loads(shared_data):
    directory = os.environ.get("AMSGRAD_SHARED_CIFAR10") or os.path.join(
        os.path.expanduser("~"), ".cache", "amsgrad-experiments", "shared-cifar10")
    if cifar10.find_cifar10(directory) is None:
        pytest.skip("run scripts/prepare_shared_data.py first")
    cifar = load_quietly("cifar10", directory, download=False, cifar_centering=False)
    assert cifar.train_x.shape == (50000, 3, 32, 32) and cifar.val_x.shape == (10000, 3, 32, 32)
    assert cifar.train_x.min() >= 0 and cifar.train_x.max() <= 1
    # CIFAR-10's known channel means; the JPEG look-alike is within 0.001 of them.
    means = cifar.train_x.mean(axis=(0, 2, 3), dtype=np.float64)
    np.testing.assert_allclose(means, [0.4914, 0.4822, 0.4465], atol=2e-3)
    mean_image = cifar.train_x.mean(axis=0, dtype=np.float64)
    assert np.bincount(cifar.train_y).tolist() == [5000] * 10
    assert np.bincount(cifar.test_y).tolist() == [1000] * 10
    uncentred_val = cifar.val_x
    del cifar
    centred = load_quietly("cifar10", directory, download=False)  # the default
    assert np.abs(centred.train_x.mean(axis=0, dtype=np.float64)).max() < 1e-6
    np.testing.assert_allclose(centred.val_x, uncentred_val - mean_image, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- python -m data

def test_command_line_reports_each_data_set_or_fails_in_one_line(tmp_path, tiny_sizes,
                                                                  capsys):
    from data.__main__ import main
    from errors import run_cli
    fx.write_mnist(str(tmp_path / "mnist"), num_train=40, num_test=12)
    with pytest.warns(data.DataWarning):
        assert run_cli(main, ["mnist", "--data-dir", str(tmp_path), "--offline"]) == 0
    assert capsys.readouterr().out == "mnist: train 30, val 10, test 12, inputs 1x28x28; %s\n" \
        % (tmp_path / "mnist")
    assert run_cli(main, ["cifar10", "--data-dir", str(tmp_path), "--offline"],
                   prog="python -m data") == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m data: error: cifar10 is not in %s" % (tmp_path / "cifar10"))
    assert err.count("\n") == 1 and listing(str(tmp_path / "mnist")) == sorted(
        name + ".gz" for name in fx.MNIST_NAMES.values())


# ---------------------------------------------------------------- bombs

def _gzip_bomb(path, header, inflated_mib):
    """A real gzip file: the IDX header, then ``inflated_mib`` MiB of zeros (~1,000:1)."""
    import zlib
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    zeros = bytes(1 << 20)
    parts = [compressor.compress(header)]
    parts += [compressor.compress(zeros) for _ in range(inflated_mib)]
    with open(path, "wb") as stream:
        stream.write(b"".join(parts) + compressor.flush())
    return path


#: Reads the file in a fresh process; prints the error and the process's peak resident MiB.
_READ_AND_MEASURE = """
import sys
from errors import UserError
from data import idx
try:
    idx.read_images(sys.argv[1], max_count=60000)
    print("read")
except UserError as error:
    print(error)
# VmHWM is this program's own peak; ru_maxrss would count the forking pytest's size.
with open("/proc/self/status") as status:
    print([int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:")][0])
"""


@pytest.mark.parametrize("images,words", [
    (60000, "trailing bytes"),          # the official count, gigabytes after its payload
    (2 ** 31, "promises 2147483648 items, at most 60000"),  # a header as large as the bomb
])
def test_a_gzip_bomb_is_refused_before_it_is_inflated(tmp_path, images, words):
    import struct
    import subprocess
    import sys
    header = struct.pack(">HBBIII", 0, 8, 3, images, 28, 28)
    path = _gzip_bomb(str(tmp_path / "train-images-idx3-ubyte.gz"), header, 768)
    assert os.path.getsize(path) < 1 << 20  # under a MiB on disk, 768 MiB inflated
    done = subprocess.run([sys.executable, "-c", _READ_AND_MEASURE, path], capture_output=True,
                          text=True, timeout=300)
    message, peak_mib = done.stdout.splitlines()
    assert words in message and path in message, done.stdout + done.stderr
    # The payload of 60,000 images is 45 MiB; the interpreter with NumPy about 40.
    assert int(peak_mib) < 200, peak_mib
