"""
Theano's MRG31k3p random numbers (``mrg_uniform``) in JAX, bit for bit.

.. autosummary::
    :nosignatures:

    jax_funcify_mrg_uniform
    mrg31k3p_uniform
    MRG_JUMP_AHEAD

The integers are those of Theano's C code, so that dropout masks of the JAX
backend are those of the C backend.  Two ways give them: jumping ahead
(:func:`mrg31k3p_uniform`, every sample at once from powers of the
recurrences' matrices) and stepping the streams in sequence (a ``lax.scan``,
the C code's way); :data:`MRG_JUMP_AHEAD` picks one.

Examples
--------
>>> import compat  # noqa: F401
>>> import numpy as np
>>> from backends.jax_ops import mrg_random
>>> state = np.array([[12345] * 6], dtype="int32")
>>> new_state, sample = mrg_random.mrg31k3p_uniform(state, (3,), "float32")
>>> sample.shape
(3,)
"""
import functools

import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from theano.link.jax.jax_dispatch import jax_funcify
from theano.sandbox.rng_mrg import mrg_uniform

__all__ = ["mrg31k3p_uniform", "MRG_JUMP_AHEAD", "NORM"]


M1, M2 = np.int32(2147483647), np.int32(2147462579)
MASK12, MASK13, MASK2, MULT2 = (np.int32(v) for v in (511, 16777215, 65535, 21069))
#: Scale from the integer sample to (0, 1), the C code's literal for each dtype.
NORM = {"float32": np.float32(4.6566126e-10), "float64": np.float64(4.656612873077392578125e-10)}


def _wrap(y, modulus):
    # The C code's 'if (y < 0 || y >= M) y -= M;' on int32, overflow included.
    return jnp.where((y < 0) | (y >= modulus), y - modulus, y)


def _mrg_step(state):
    """One step of every stream: new state (n, 6) and the integer sample (n,)."""
    x11, x12, x13, x21, x22, x23 = (state[:, i] for i in range(6))
    y1 = (((x12 & MASK12) << 22) + (x12 >> 9)
          + ((x13 & MASK13) << 7) + (x13 >> 24))
    y1 = _wrap(_wrap(y1, M1) + x13, M1)
    x13, x12, x11 = x12, x11, y1
    y1 = _wrap(((x21 & MASK2) << 15) + MULT2 * (x21 >> 16), M2)
    y2 = _wrap(((x23 & MASK2) << 15) + MULT2 * (x23 >> 16), M2)
    y2 = _wrap(_wrap(y2 + x23, M2) + y1, M2)
    x23, x22, x21 = x22, x21, y2
    sample = jnp.where(x11 <= x21, x11 - x21 + M1, x11 - x21)
    return jnp.stack([x11, x12, x13, x21, x22, x23], axis=1), sample


#: MRG31k3p's two linear recurrences as 3x3 matrices on a stream's state
#: ``(newest, middle, oldest)``: one step is ``state <- A @ state mod M``.
_A1 = ((0, 2 ** 22, 2 ** 7 + 1), (1, 0, 0), (0, 1, 0))
_A2 = ((2 ** 15, 0, 2 ** 15 + 1), (1, 0, 0), (0, 1, 0))


@functools.lru_cache(maxsize=64)
def _jump_matrices(steps):
    """``A1**k mod M1`` and ``A2**k mod M2`` for k = 1..steps, int64 arrays (steps, 3, 3)."""
    powers = []
    for matrix, modulus in ((_A1, int(M1)), (_A2, int(M2))):
        step, current, out = np.array(matrix, dtype=object), np.eye(3, dtype=object), []
        for _ in range(steps):
            current = step.dot(current) % modulus  # Python integers: no overflow
            out.append(current)
        powers.append(np.array(out, dtype=np.int64).reshape(steps, 3, 3))
    return powers


def _jump(matrices, state, modulus):
    """``matrices @ state mod modulus`` for every stream; int64 products below 2**62."""
    products = (matrices[:, None, :, :] * state[None, :, None, :]) % modulus
    return products.sum(axis=-1) % modulus


def mrg31k3p_uniform(rstate, size, dtype):
    """Uniform samples in (0, 1) from Theano's MRG31k3p streams, bit for bit.

    Element ``i`` of the (flattened) sample is the next number of stream
    ``i % n_streams``, as in Theano's ``mrg_uniform`` C code.  Instead of
    stepping every stream ``k`` times in sequence (``k`` small kernels on a
    GPU), the ``k``-th state is computed directly as ``A**k @ state mod M``
    (the recurrences are linear): all samples at once, the same integers.

    Parameters
    ----------
    rstate : int32 array (n_streams, 6)
        The streams' states
    size : sequence of int
        Shape of the sample
    dtype : {'float32', 'float64'}

    Returns
    -------
    new_rstate : int32 array (n_streams, 6)
    sample : array of ``size``
    """
    if str(dtype) not in NORM:
        raise NotImplementedError("mrg_uniform of dtype %s" % dtype)
    rstate = jnp.asarray(rstate, dtype="int32")
    size = tuple(int(s) for s in np.asarray(size).reshape(-1))
    n = int(np.prod(size, dtype="int64"))
    if n > M1:
        raise ValueError("rng_mrg does not support more than (2**31 - 1) samples")
    streams = rstate.shape[0]
    steps = -(-n // streams)
    if steps == 0:
        return rstate, jnp.zeros(size, dtype)
    powers1, powers2 = _jump_matrices(steps)
    state = rstate.astype("int64")
    first = _jump(jnp.asarray(powers1[:, :1]), state[:, :3], int(M1))[..., 0]  # (steps, n)
    second = _jump(jnp.asarray(powers2[:, :1]), state[:, 3:], int(M2))[..., 0]
    samples = jnp.where(first <= second, first - second + int(M1), first - second)
    # A stream advances once per sample it gives: the last step only the first 'used'.
    used = n - (steps - 1) * streams
    last = jnp.concatenate([_jump(jnp.asarray(powers1[steps - 1:]), state[:, :3], int(M1))[0],
                            _jump(jnp.asarray(powers2[steps - 1:]), state[:, 3:], int(M2))[0]],
                           axis=1)
    if steps > 1:
        before = jnp.concatenate(
            [_jump(jnp.asarray(powers1[steps - 2:steps - 1]), state[:, :3], int(M1))[0],
             _jump(jnp.asarray(powers2[steps - 2:steps - 1]), state[:, 3:], int(M2))[0]], axis=1)
    else:
        before = state
    new_state = jnp.where((jnp.arange(streams) < used)[:, None], last, before)
    flat = samples.reshape(-1)[:n]
    return (new_state.astype("int32"),
            (flat.astype("int32").astype(dtype) * NORM[str(dtype)]).reshape(size))


def _mrg31k3p_uniform_scan(rstate, size, dtype):
    """:func:`mrg31k3p_uniform` stepping the streams in sequence (the C code's way; tests)."""
    rstate = jnp.asarray(rstate, dtype="int32")
    size = tuple(int(s) for s in np.asarray(size).reshape(-1))
    n = int(np.prod(size, dtype="int64"))
    streams = rstate.shape[0]
    steps = -(-n // streams)

    def body(state, _):
        return _mrg_step(state)

    state, samples = lax.scan(body, rstate, None, length=steps - 1)
    last_state, last_sample = _mrg_step(state)
    used = n - (steps - 1) * streams
    new_state = jnp.where((jnp.arange(streams) < used)[:, None], last_state, state)
    flat = jnp.concatenate([samples.reshape(-1), last_sample[:used]])
    return new_state, (flat.astype(dtype) * NORM[str(dtype)]).reshape(size)


#: How ``mrg_uniform`` computes its samples: True jumps ahead
#: (:func:`mrg31k3p_uniform`), False steps the streams in sequence (``lax.scan``),
#: None (default) jumps on accelerators and steps on the CPU, the faster way on
#: each (int64 remainders are dear on a CPU; a scan's sequential steps on a GPU).
#: Both give the same numbers.
MRG_JUMP_AHEAD = None


@jax_funcify.register(mrg_uniform)
def jax_funcify_mrg_uniform(op):
    """MRG31k3p uniform sample (``mrg_uniform``), see :func:`mrg31k3p_uniform`."""
    def sample(rstate, size):
        jump = MRG_JUMP_AHEAD
        if jump is None:
            jump = jax.default_backend() != "cpu"
        function = mrg31k3p_uniform if jump else _mrg31k3p_uniform_scan
        return function(rstate, size, op.output_type.dtype)

    return sample
