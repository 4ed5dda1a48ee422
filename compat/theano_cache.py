"""
Make Theano's compile cache safe for several processes at once: atomic ``key.pkl`` writes.

Every entry of Theano's module cache is a directory ``tmpXXXXXXXX/`` in the
compiledir holding a compiled module and ``key.pkl``, the pickled keys that
lead to it.  Theano-PyMC 1.1.2 rewrites ``key.pkl`` in place
(``KeyData.save_pkl``: ``open(path, "wb")`` then ``pickle.dump``) each time a
process finds a module by its hash under a new key, holding the compile lock.
But every process walks the whole cache *without* the lock when it starts its
module cache (``ModuleCache.refresh``, on its first compilation), and a
``key.pkl`` it reads while another process is rewriting it is empty:
``EOFError``, which ``refresh`` takes for a broken entry and deletes
(``"Deleting (broken cache directory [EOF])"``), directory and module.  The
process that owns that entry fails at its next compilation that finds the
module by hash: ``FileNotFoundError`` on the vanished ``key.pkl``, then,
since the key was added before the write failed, ``AssertionError`` in
``KeyData.add_key`` at every later try of that key in that process.

:func:`install` replaces ``save_pkl`` by a write into a temporary file in the
entry's directory renamed over ``key.pkl`` (``os.replace``): a reader sees the
old keys or the new ones, never an empty file, so no entry is deleted for it.
The temporary file's name (``.key.pkl.PID.THREAD.tmp``) is neither ``key.pkl``, nor
a module (``.so``), nor ``delete.me``, so a cache walk ignores it.

Examples
--------
>>> import compat  # installs it
>>> from theano.link.c.cmodule import KeyData
>>> KeyData.save_pkl.__module__
'compat.theano_cache'
"""
import contextlib
import logging
import os
import pickle
import threading

__all__ = ["install", "save_pkl_atomically"]

_logger = logging.getLogger("theano.link.c.cmodule")


def save_pkl_atomically(self):
    """``KeyData.save_pkl``, written to a temporary file and renamed over ``key.pkl``.

    Raises
    ------
    pickle.PicklingError
        As Theano's does (its callers then drop the key and save again); the
        previous ``key.pkl``, if any, is kept whole
    """
    tmp_path = os.path.join(os.path.dirname(self.key_pkl), ".key.pkl.%d.%d.tmp" % (
        os.getpid(), threading.get_ident()))
    try:
        with open(tmp_path, "wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp_path, self.key_pkl)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        if isinstance(exc, pickle.PicklingError):
            _logger.warning("Cache leak due to unpickle-able key data %s", self.keys)
        raise


def install():
    """Make Theano's ``KeyData.save_pkl`` atomic (idempotent); imports Theano."""
    from theano.link.c import cmodule

    cmodule.KeyData.save_pkl = save_pkl_atomically
