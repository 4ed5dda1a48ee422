"""
The grid's Dask client: check that an address is a Dask scheduler, connect, submit the tasks.

.. autosummary::
    :nosignatures:

    check_scheduler
    dask_cluster
    DASK_PIN

:func:`experiments.launch.grid.run_grid` sends its tasks here with
``--scheduler ADDRESS``.  Before distributed's client connects, the address
is checked to answer as a Dask scheduler does (:func:`check_scheduler`):
distributed reads the first 8 bytes a server sends as the length of a
message and allocates that much, so a server of another kind (an HTTP
server answers ``HTTP/1.0``, 3 EiB) ended in a ``MemoryError`` traceback or
a client waiting forever.

Imports neither NumPy nor Dask at the top (see :mod:`experiments.launch.worker`).
"""
import contextlib
import socket
import struct
import uuid

from errors import UserError

__all__ = ["check_scheduler", "dask_cluster", "DASK_PIN", "DASK_RETRIES",
           "DASK_CONNECT_TIMEOUT"]

#: The Dask release the grid was tested with.
DASK_PIN = "dask[distributed]==2024.12.1"
#: Dask reschedules a task whose worker died by itself (up to the scheduler's
#: ``allowed-failures``, 3); retries also rerun a task that raised (a file system hiccup).
DASK_RETRIES = 2
#: Seconds to reach the scheduler, and for it to greet once reached.
DASK_CONNECT_TIMEOUT = 20
#: The largest greeting a scheduler may announce, in bytes; its real one (a dict of
#: versions and options, msgpack'ed) is about 100.
GREETING_LIMIT = 2**20


def check_scheduler(address, timeout):
    """Raise errors.UserError when the server at ``address`` is not a Dask scheduler.

    A Dask scheduler speaks first on every connection: the 8-byte length
    (little-endian) of its greeting, then the greeting (distributed's TCP
    comm).  At most those 8 bytes are read here.  Only ``tcp://`` addresses
    are checked (a ``tls://`` one needs its handshake first); an address that
    cannot be parsed or reached is left to distributed's client, which
    retries until its timeout (the scheduler may be starting) and says why.

    Parameters
    ----------
    address : str
        ``tcp://HOST:PORT`` (or ``HOST:PORT``)
    timeout : float
        Seconds to connect, and for the greeting to arrive

    Raises
    ------
    errors.UserError
        When the server sends nothing within ``timeout``, or something that is
        not the length of a greeting; the message names the address.
    """
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme != "tcp":
            return
        host, port = parse_host_port(location)
        connection = socket.create_connection((host, port), timeout=timeout)
    except (OSError, ValueError, TypeError):
        return
    with connection:
        prelude = _receive(connection, 8)
    if len(prelude) == 8 and struct.unpack("<Q", prelude)[0] <= GREETING_LIMIT:
        return
    if prelude:
        what = "it sent %r, which no Dask message begins with" % prelude
    else:
        what = "it sent nothing within %g s of connecting, where a scheduler speaks first" % (
            timeout)
    raise UserError("%s is not a Dask scheduler: %s; pass the address that 'dask scheduler' "
                    "prints (tcp://HOST:8786 by default)" % (address, what))


def _receive(connection, size):
    """Up to ``size`` bytes from a socket: fewer when it closes or its timeout passes."""
    received = b""
    while len(received) < size:
        try:
            chunk = connection.recv(size - len(received))
        except OSError:  # the timeout (socket.timeout is one), a reset
            break
        if not chunk:
            break
        received += chunk
    return received


@contextlib.contextmanager
def dask_cluster(address, task, name, say):
    """``(submit, wait_first, lost_worker_errors)`` of a Dask distributed client.

    Parameters
    ----------
    address : str
        The scheduler's, as ``--scheduler`` gives it
    task : callable
        ``task(configs, wait_if_busy)`` -> ``(function, keyword arguments)`` of the task
        that trains those runs
    name : callable
        ``name(config)`` -> a run's name, to build the task's key from
    say : callable
        Prints one line (a notice)

    Raises
    ------
    errors.UserError
        When Dask is not installed, the address is not a Dask scheduler
        (:func:`check_scheduler`) or cannot be reached within
        :data:`DASK_CONNECT_TIMEOUT`.
    """
    try:
        import distributed
    except ImportError:
        raise UserError("--scheduler needs Dask: pip install '%s' (or run locally without "
                        "--scheduler)" % DASK_PIN)
    check_scheduler(address, DASK_CONNECT_TIMEOUT)
    try:
        client = distributed.Client(address, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError("cannot connect to the Dask scheduler at %s (%s); start one with "
                        "'dask scheduler' and pass the address it prints" % (address, exc))
    except (MemoryError, OverflowError) as exc:  # a peer that check_scheduler let by (tls)
        raise UserError("%s is not a Dask scheduler: the client read a message of impossible "
                        "length from it (%s: %s); pass the address that 'dask scheduler' "
                        "prints" % (address, type(exc).__name__, exc))
    if not client.scheduler_info().get("workers"):
        say("the Dask scheduler at %s has no workers yet; the runs start when "
            "'dask worker %s --nthreads 1' processes connect" % (address, address))

    def submit(configs, wait_if_busy):
        key = "%s%s-%s" % (name(configs[0]).replace(" ", "/"),
                           "+%d" % (len(configs) - 1) if len(configs) > 1 else "",
                           uuid.uuid4().hex)
        function, arguments = task(configs, wait_if_busy)
        return client.submit(function, key=key, pure=False, retries=DASK_RETRIES, **arguments)

    def wait_first(futures):
        return distributed.wait(list(futures), return_when="FIRST_COMPLETED")

    try:
        yield submit, wait_first, (distributed.KilledWorker,)
    finally:
        # Unfinished tasks are cancelled once no client wants them; a run being
        # trained keeps its worker until it ends.
        client.close()
