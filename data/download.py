"""
Downloading the official data files: sources, checksums, the cache directory.

.. autosummary::
    :nosignatures:

    RemoteFile
    SOURCES
    default_data_dir
    file_checksum
    make_session
    download

A file is streamed from its addresses, tried in order, into a temporary file
beside its final place, with a progress bar.  Only when its checksum matches
the published one is it renamed into place (an atomic rename), so the cache
never holds a half-written or unverified file under an official name.  A source
that fails (HTTP error, time-out, an HTML page instead of the file, a checksum
mismatch) is dropped, its temporary file removed, and the next one tried.

Examples
--------
>>> from data.download import SOURCES, default_data_dir, download
>>> path = download(SOURCES["mnist"][0], default_data_dir() + "/mnist")  # doctest: +SKIP
"""
import dataclasses
import hashlib
import os
import tempfile

import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.util.retry import Retry

from errors import UserError

__all__ = ["RemoteFile", "SOURCES", "default_data_dir", "file_checksum", "make_session",
           "download"]


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One official file: its name, where to get it, and its published checksum.

    Attributes
    ----------
    filename : str
        The official file name, also its name in the cache.
    urls : tuple of str
        Full addresses, tried in order.
    algorithm : str
        A :func:`hashlib.new` name (``"md5"`` or ``"sha256"``).
    digest : str
        The published checksum, lower-case hex.
    """
    filename: str
    urls: tuple
    algorithm: str
    digest: str


def _remote_files(bases, checksums, algorithm="md5"):
    return tuple(RemoteFile(name, tuple(base + name for base in bases), algorithm, digest)
                 for name, digest in checksums)


# The MNIST mirrors come first: yann.lecun.com, the original home, has refused
# unauthenticated downloads since 2023.  The mirrors serve the same bytes (the
# checksums are those torchvision checks against all three).
_MNIST_BASES = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/")
_FASHION_MNIST_BASES = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/"
                        "master/data/fashion/",
                        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/")
_CIFAR10_BASES = ("https://www.cs.toronto.edu/~kriz/",)

#: The official files of each data set (the MD5 sums published with them).
SOURCES = {
    "mnist": _remote_files(_MNIST_BASES, [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")]),
    "fashion_mnist": _remote_files(_FASHION_MNIST_BASES, [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")]),
    "cifar10": _remote_files(_CIFAR10_BASES, [
        ("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")]),
}

#: Seconds to wait for a connection, and for each read of the stream.
TIMEOUT = (15, 60)
_CHUNK_BYTES = 1 << 20


def default_data_dir():
    """The data directory used when none is given.

    Returns
    -------
    str
        ``$AMSGRAD_DATA`` when set, else ``amsgrad-experiments/data`` in the
        per-user cache (``$XDG_CACHE_HOME``, else ``~/.cache``).
    """
    configured = os.environ.get("AMSGRAD_DATA")
    if configured:
        return os.path.expanduser(configured)
    cache = os.environ.get("XDG_CACHE_HOME")
    if not cache or not os.path.isabs(cache):  # the XDG spec says to ignore relative paths
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "amsgrad-experiments", "data")


def file_checksum(path, algorithm):
    """Hex digest of a file's bytes, read in chunks.

    Parameters
    ----------
    path : str
        The file.
    algorithm : str
        A :func:`hashlib.new` name.

    Returns
    -------
    str
        The lower-case hex digest.
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def make_session(retries=3):
    """A :class:`requests.Session` that retries failed connections and server errors.

    Parameters
    ----------
    retries : int
        How often urllib3 retries a connection error or a 429/5xx answer, with
        exponential back-off, before the address counts as failed.  Read
        time-outs are not retried: a stalled server is left for the next source.

    Returns
    -------
    requests.Session
    """
    retry = Retry(total=retries, connect=retries, status=retries, read=0, redirect=5,
                  backoff_factor=1.0, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset(["GET"]))
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _BadSource(Exception):
    """This address did not deliver the file; the next one is tried."""


def _looks_like_html(first_bytes):
    start = first_bytes[:512].lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def _stream_to(response, stream, remote, progress):
    """Write the body to ``stream``; return its hex digest."""
    content_type = response.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() == "text/html":
        raise _BadSource("answered with a web page (Content-Type %s), not the file"
                         % content_type)
    digest = hashlib.new(remote.algorithm)
    size = response.headers.get("Content-Length")
    with tqdm(total=int(size) if size and size.isdigit() else None, unit="B",
              unit_scale=True, unit_divisor=1024, desc=remote.filename, leave=False,
              disable=not progress) as bar:
        first = True
        for chunk in response.iter_content(_CHUNK_BYTES):
            if first and _looks_like_html(chunk):
                raise _BadSource("answered with a web page (HTML), not the file")
            first = False
            stream.write(chunk)
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _read_timeout(timeout):
    return timeout[1] if isinstance(timeout, tuple) else timeout


def _fetch_one(url, remote, directory, session, timeout, progress):
    """Download ``url`` into ``directory/remote.filename``, or raise _BadSource."""
    part = tempfile.NamedTemporaryFile(dir=directory, prefix="." + remote.filename + ".",
                                       suffix=".part", delete=False)
    try:
        with part, session.get(url, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            digest = _stream_to(response, part, remote, progress)
        if digest != remote.digest:
            raise _BadSource("%s checksum %s, expected %s"
                             % (remote.algorithm.upper(), digest, remote.digest))
        os.chmod(part.name, 0o644)  # the temporary file was private to this user
        target = os.path.join(directory, remote.filename)
        os.replace(part.name, target)
        return target
    except requests.exceptions.Timeout:
        raise _BadSource("timed out (no answer within %s s)" % _read_timeout(timeout))
    except requests.exceptions.ConnectionError as exc:
        # A read that stalls inside the body surfaces as a ConnectionError.
        if "timed out" in str(exc).lower():
            raise _BadSource("timed out (no data for %s s)" % _read_timeout(timeout))
        raise _BadSource("connection failed (%s)" % exc)
    except requests.RequestException as exc:
        raise _BadSource(str(exc))
    finally:
        if os.path.exists(part.name):
            os.remove(part.name)


def download(remote, directory, session=None, timeout=TIMEOUT, progress=True):
    """Download one official file into ``directory``, verified against its checksum.

    Parameters
    ----------
    remote : RemoteFile
        What to download.
    directory : str
        Where it goes (created if missing); the file is
        ``directory/remote.filename``.
    session : requests.Session or None
        The HTTP client; :func:`make_session` when None.
    timeout : float or (float, float)
        Seconds to wait for a connection and for each read, as in ``requests``.
    progress : bool
        Show a progress bar (on stderr).

    Returns
    -------
    str
        The path of the verified file.

    Raises
    ------
    errors.UserError
        When the directory cannot be written, or no address delivered the file
        with the published checksum; the message lists each address's failure
        and says how to supply the file by hand.

    Notes
    -----
    The body is written to a hidden ``.FILENAME.*.part`` file in ``directory``
    and renamed into place only after its checksum matched, so an interrupted or
    failed download leaves no file under the official name.  Files already in
    the directory are never touched unless the download succeeds, in which
    case the verified file replaces one of the same name.
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise UserError("cannot create the data directory %s (%s); pass --data-dir or set "
                        "AMSGRAD_DATA to a writable directory" % (directory, exc.strerror))
    if session is None:
        session = make_session()
    failures = []
    for url in remote.urls:
        try:
            return _fetch_one(url, remote, directory, session, timeout, progress)
        except _BadSource as exc:
            failures.append("%s: %s" % (url, exc))
        except OSError as exc:
            raise UserError("cannot write %s into %s (%s); pass --data-dir or set "
                            "AMSGRAD_DATA to a writable directory with free space"
                            % (remote.filename, directory, exc.strerror or exc))
    raise UserError("could not download %s (%s). Download it yourself from one of those "
                    "addresses into %s (the checksum is %s %s), or pass --data-dir with a "
                    "directory that holds it"
                    % (remote.filename, "; ".join(failures), directory,
                       remote.algorithm.upper(), remote.digest))
