"""
Packed runs: the ``config.json`` and ``history.json`` of many runs in one file.

.. autosummary::
    :nosignatures:

    write_packed
    read_packed

``make_figures.py --pack`` writes one file per setup (``SETUP`` +
:data:`PACKED_SUFFIX`), one run per line; the figures and the report read it
as they read the run directories it replaces.
"""
import json

from experiments.store.atomic import atomic_write_bytes, load_json

__all__ = ["PACKED_SUFFIX", "PACKED_FORMAT", "write_packed", "read_packed"]

#: A packed file holds the config.json and history.json of many runs of one setup, one run
#: per line: ``SETUP`` + this suffix, beside other packed files (``make_figures.py --pack``).
PACKED_SUFFIX = ".runs.json"
PACKED_FORMAT = "amsgrad-experiments packed runs 1"


def write_packed(path, runs):
    """Write runs' ``config.json`` and ``history.json`` contents into one file, atomically.

    Parameters
    ----------
    path : str
        Ends with :data:`PACKED_SUFFIX`
    runs : sequence of (dict, dict)
        Each run's config and history, as read from its files
    """
    lines = [json.dumps({"config": config, "history": history}, sort_keys=True,
                        separators=(",", ":")) for config, history in runs]
    text = '{"format":%s,"runs":[\n%s\n]}\n' % (json.dumps(PACKED_FORMAT), ",\n".join(lines))
    atomic_write_bytes(path, text.encode("utf-8"))


def read_packed(path):
    """The ``(config, history)`` dicts of a file written by :func:`write_packed`.

    Raises
    ------
    ValueError
        Saying why the file is not a packed file (unchecked beyond its shape:
        the reader checks each run as it checks a run directory's files)
    """
    contents = load_json(path)
    if not isinstance(contents, dict) or contents.get("format") != PACKED_FORMAT or \
            not isinstance(contents.get("runs"), list):
        raise ValueError("is not a file of packed runs (%r)" % PACKED_FORMAT)
    runs = []
    for index, entry in enumerate(contents["runs"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict) or \
                not isinstance(entry.get("history"), dict):
            raise ValueError("run %d is not {config, history}" % index)
        runs.append((entry["config"], entry["history"]))
    return runs
