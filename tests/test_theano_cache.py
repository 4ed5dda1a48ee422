"""Theano's compile cache shared by processes at once (compat/theano_cache.py).

Two real processes on one fresh cache directory: one keeps rewriting the
``key.pkl`` of the modules it compiled, under the compile lock, as Theano does
each time it finds a module by hash under a new key; the other starts
Theano's module cache again and again, as every process does at its first
compilation, walking the cache without the lock.  Without atomic writes the
walker reads an empty ``key.pkl`` within a second or two and deletes that
module's directory (and the writer's next use of it fails:
``FileNotFoundError``, then ``AssertionError`` in ``KeyData.add_key``).
"""
import os
import subprocess
import sys
import time

import pytest

from theano.link.c.cmodule import KeyData

import compat.theano_cache

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: How long both processes hammer the cache.
SECONDS = 8

#: Compiles two small functions (their modules' entries: one line each on stdout),
#: writes $READY, then rewrites their key.pkl files as add_key does, for SECONDS.
WRITER = """
import os, sys, time
import compat, theano, theano.tensor as T
from theano.compile.compilelock import lock_ctx
from theano.link.c.cmodule import get_module_cache

x = T.fmatrix("x")
theano.function([x], T.tanh(x.dot(x)) * 2 + 1)
cache = get_module_cache(theano.config.compiledir)
# Only versioned modules have a key.pkl (Theano saves no other).
entries = [data for data in cache.module_hash_to_key_data.values()
           if data.keys and all(key[0] for key in data.keys)]
for data in entries:
    print(os.path.dirname(data.key_pkl), flush=True)
open(os.environ["READY"], "w").close()
end, writes = time.time() + float(sys.argv[1]), 0
while time.time() < end:
    for data in entries:
        with lock_ctx():
            data.save_pkl()
        writes += 1
print("writes", writes, file=sys.stderr)
"""

#: Waits for $READY, then starts a module cache (a full walk of the cache) again and
#: again for SECONDS; Theano logs each entry it deletes ("Deleting (...)") on stderr.
WALKER = """
import os, sys, time
import compat, theano
from theano.link.c.cmodule import ModuleCache

while not os.path.exists(os.environ["READY"]):
    time.sleep(0.05)
end, walks = time.time() + float(sys.argv[1]), 0
while time.time() < end:
    ModuleCache(theano.config.compiledir)
    walks += 1
print("walks", walks, file=sys.stderr)
"""


def test_save_pkl_is_theanos_replaced():
    assert KeyData.save_pkl is compat.theano_cache.save_pkl_atomically


@pytest.mark.slow
def test_two_processes_on_one_fresh_cache_delete_nothing(tmp_path):
    env = {name: value for name, value in os.environ.items() if name != "THEANO_FLAGS"}
    env.update(AMSGRAD_THEANO_CACHE=str(tmp_path / "cache"),
               READY=str(tmp_path / "ready"),
               PYTHONPATH=os.pathsep.join([REPO] + [p for p in os.environ.get(
                   "PYTHONPATH", "").split(os.pathsep) if p]))
    os.makedirs(env["AMSGRAD_THEANO_CACHE"])

    def start(script):
        return subprocess.Popen([sys.executable, "-c", script, str(SECONDS)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    writer, walker = start(WRITER), start(WALKER)
    try:
        (entries, writer_err), (_, walker_err) = writer.communicate(600), walker.communicate(60)
    finally:
        for process in (writer, walker):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert writer.returncode == 0, writer_err[-3000:] + walker_err[-3000:]
    assert walker.returncode == 0, walker_err[-3000:]
    entries = entries.split()
    writes = int(writer_err.split("writes")[-1])
    walks = int(walker_err.split("walks")[-1])
    assert entries and writes > 100 and walks > 20  # they did overlap, many times
    assert "Deleting" not in walker_err, walker_err[-3000:]
    for entry in entries:
        assert os.path.exists(os.path.join(entry, "key.pkl")), entry
        assert not [name for name in os.listdir(entry) if name.endswith(".tmp")], entry
