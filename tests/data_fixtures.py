"""Helpers for tests/test_data.py: tiny files in the official formats, written here
independently of data/, and a local HTTP server for the download path."""
import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import tarfile
import threading

import numpy as np

MNIST_NAMES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
               "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def md5(content):
    return hashlib.md5(content).hexdigest()


def idx_bytes(array, type_code=0x08):
    """An IDX file as the format's description spells it: magic, sizes, bytes."""
    header = struct.pack(">HBB", 0, type_code, array.ndim)
    header += struct.pack(">%dI" % array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_file(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(content)
    return path


def mnist_arrays(num_train, num_test, seed=0):
    rng = np.random.RandomState(seed)
    return {"train_x": rng.randint(0, 256, (num_train, 28, 28)).astype(np.uint8),
            "train_y": rng.randint(0, 10, num_train).astype(np.uint8),
            "test_x": rng.randint(0, 256, (num_test, 28, 28)).astype(np.uint8),
            "test_y": rng.randint(0, 10, num_test).astype(np.uint8)}


def mnist_file_bytes(arrays, compress=True):
    """{official file name: bytes} of the four IDX files."""
    files = {}
    for key, stem in MNIST_NAMES.items():
        content = idx_bytes(arrays[key])
        files[stem + ".gz" if compress else stem] = gzip.compress(content) if compress \
            else content
    return files


def write_mnist(directory, num_train, num_test, compress=True, seed=0):
    """Write the four files into ``directory``; return the arrays they hold."""
    arrays = mnist_arrays(num_train, num_test, seed)
    for filename, content in mnist_file_bytes(arrays, compress).items():
        write_file(os.path.join(directory, filename), content)
    return arrays


def cifar_rows(n, rng):
    """n images in the batch layout: one row of 1024 red, 1024 green, 1024 blue bytes."""
    return rng.randint(0, 256, (n, 3072)).astype(np.uint8)


def cifar_batch_bytes(rows, labels):
    """A batch pickled like the official ones (bytes keys, a list of labels)."""
    batch = {b"batch_label": b"test batch", b"data": rows, b"labels": [int(k) for k in labels],
             b"filenames": [b"x.png"] * len(labels)}
    return pickle.dumps(batch, protocol=2)


def cifar_file_bytes(per_batch, test_size, seed=0):
    """({member name: bytes}, arrays) of the five training batches and the test batch."""
    rng = np.random.RandomState(seed)
    arrays = {"train_x": cifar_rows(5 * per_batch, rng),
              "train_y": rng.randint(0, 10, 5 * per_batch),
              "test_x": cifar_rows(test_size, rng), "test_y": rng.randint(0, 10, test_size)}
    members = {}
    for k in range(5):
        part = slice(k * per_batch, (k + 1) * per_batch)
        members["data_batch_%d" % (k + 1)] = cifar_batch_bytes(arrays["train_x"][part],
                                                               arrays["train_y"][part])
    members["test_batch"] = cifar_batch_bytes(arrays["test_x"], arrays["test_y"])
    members["batches.meta"] = pickle.dumps({b"label_names": [b"c%d" % k for k in range(10)]},
                                           protocol=2)
    return members, arrays


def tar_gz_bytes(members, prefix="cifar-10-batches-py/"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def write_cifar(directory, per_batch, test_size, layout, seed=0):
    """Write CIFAR-10 in one layout: ``archive`` (cifar-10-python.tar.gz),
    ``extracted`` (cifar-10-batches-py/) or ``flat`` (the batches in directory)."""
    members, arrays = cifar_file_bytes(per_batch, test_size, seed)
    if layout == "archive":
        write_file(os.path.join(directory, "cifar-10-python.tar.gz"), tar_gz_bytes(members))
    else:
        target = os.path.join(directory, "cifar-10-batches-py") if layout == "extracted" \
            else directory
        for name, content in members.items():
            write_file(os.path.join(target, name), content)
    return arrays


class Route:
    """What the server answers for one path.

    ``stall`` is None, ``"headers"`` (wait before answering) or ``"body"`` (send the
    headers and the first half of the body, then wait): the wait lasts until the
    server is stopped.  ``statuses``: answers to give first, one per request
    (e.g. [503] for one failure before the real answer).
    """

    def __init__(self, body=b"", status=200, content_type="application/octet-stream",
                 stall=None, statuses=()):
        self.body, self.status, self.content_type = body, status, content_type
        self.stall, self.statuses = stall, list(statuses)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        route = server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        if route.statuses:
            self.send_error(route.statuses.pop(0))
            return
        if route.stall == "headers":
            server.release.wait(10)
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        try:
            if route.stall == "body":
                self.wfile.write(route.body[:len(route.body) // 2])
                self.wfile.flush()
                server.release.wait(10)
            self.wfile.write(route.body)
        except OSError:  # the client gave up, as it should
            pass

    def log_message(self, *args):
        pass


class FileServer:
    """An HTTP server on 127.0.0.1 in a thread; ``routes`` maps paths to Routes."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes, self.httpd.requests = {}, []
        self.httpd.release = threading.Event()
        self.routes, self.requests = self.httpd.routes, self.httpd.requests
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
