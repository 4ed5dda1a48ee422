"""
Several runs of one model as one ``jax.jit`` program, stepped together under ``jax.vmap``.

.. autosummary::
    :nosignatures:

    RunBatch
    BatchedFunction
    shares_program
    group_by_program

A *run* here is a tuple of Theano functions compiled for the JAX backend
(:func:`backends.compile_function` with ``backend="jax"``), typically a
training and a validation function, that read and update the run's own
shared variables (parameters, optimizer state, batch-norm averages, the
dropout layers' MRG31k3p states, the learning rate).  K runs whose graphs are
the same up to the values of their shared variables (:func:`shares_program`)
form a :class:`RunBatch`: its state is every run's shared values stacked on a
leading axis of length K, kept on the device between calls (the updated
arrays are donated); each of its :class:`BatchedFunction` traces the first
run's graph once, maps it over the K runs with ``jax.vmap`` and calls it as
one program.  Each run keeps its own values of everything: a batched step of
K runs computes what K calls of the runs' own functions would.

What is a value and what is a graph constant: the learning rate, the
initial weights, the dropout streams' seeds (the model seed, so the run index
and ``--seed``) and the data (each run's own minibatch, passed stacked) are
values; the network and input shape, the batch size, the optimizer, ``beta1``,
``beta2``, ``epsilon``, bias correction, the learning rate schedule and the
loss are constants of the graph.  Runs that differ in a constant go into
separate batches: group the runs' configurations by every field but the
learning rate and the run index (and seed) first, then check with
:func:`shares_program` or :func:`group_by_program`; :class:`RunBatch` refuses
runs whose graphs differ.

In a training loop (one epoch of K runs; the caller keeps the runs' order):

1. restore each run's checkpoint into its shared variables, then
   ``batch = RunBatch([(train_fn, val_fn) for each run])`` (or ``batch.add``
   a resumed run to a live batch);
2. before the epoch, ``set_value`` each run's learning rate and
   ``batch.reload`` those variables;
3. each step, ``loss, acc = batch.functions[0](inputs, targets)`` with
   inputs ``(K, batch size, ...)``: each run's own minibatch (its own data
   order and flips); a run whose loss is not finite is marked diverged and
   ``batch.remove``-d (or kept and ignored: no value crosses between runs);
4. after the epoch, ``batch.functions[1](x, y, same_inputs=True)`` per
   validation batch, then ``batch.write_back()`` and each run's checkpoint
   saved from its shared variables as for a run trained alone.

Exactness: each run's program inside the batch is the one its own JAX
function runs, but XLA computes a batched op with other kernels than a single
one, whose float32 sums may round otherwise.  What a batched run equals:

- on the CPU, networks without convolutions (logreg, ffnn): the run alone,
  bit for bit, whatever the batch's size (1, 2, K, a run leaving or joining).
  Their products go through :func:`backends.jax_ops.elementwise.run_dot`: a
  product large enough for oneDNN's batched kernel is computed by it alone
  (as a batch of two copies) and in any batch (one batched product, which
  computes each member alike whatever the batch's size), a small one as each
  run's own product;
- on the CPU, convolutional networks: the run alone within float32 rounding
  (a batch's convolutions are one grouped convolution);
- on a GPU: the run alone within float32 rounding; every product and
  convolution is one batched op (not tested here: no GPU was lent).

tests/test_batched.py and tests/test_batch_training.py check what holds on
the CPU per network.

Examples
--------
>>> import compat  # noqa: F401
>>> import numpy as np
>>> import theano
>>> import theano.tensor as T
>>> import backends
>>> from backends.batched import RunBatch
>>> def make_run(rate):
...     x = T.vector("x")
...     w = theano.shared(np.float32(0), name="w")
...     lr = theano.shared(np.float32(rate), name="lr")
...     return [backends.compile_function([x], x.sum() * w, updates={w: w + lr * x.sum()},
...                                       backend="jax")]
>>> batch = RunBatch([make_run(1.0), make_run(0.5)])
>>> step = batch.functions[0]
>>> step(np.ones((2, 3), "float32"))          # one input per run, stacked
[array([0., 0.], dtype=float32)]
>>> step(np.ones((2, 3), "float32"))
[array([9. , 4.5], dtype=float32)]
>>> batch.write_back()                        # into each run's shared variables
>>> float(batch.variables(1)[0].get_value())
3.0
"""
import time
import warnings

import compat  # noqa: F401  (Theano's flags, set before theano is first imported)
import jax
import numpy as np

import backends.jax_ops  # noqa: F401  (64-bit types in JAX, as the runs' own programs have)
from backends.batch_programs import SlotLayout, group_by_program, jit_function, shares_program

__all__ = ["RunBatch", "BatchedFunction", "shares_program", "group_by_program"]


class BatchedFunction:
    """One function of every run of a :class:`RunBatch`, called as one program.

    Made by :class:`RunBatch` (its ``functions``); called with the explicit
    inputs of the runs' functions, each stacked on a new leading axis of the
    batch's length (one minibatch per run), or with ``same_inputs=True`` one
    value for all runs (a validation batch).

    Returns a list of the function's outputs, each a NumPy array whose first
    axis is the run; the shared variables it updates change in the batch's
    state only (see :meth:`RunBatch.write_back`).
    """

    def __init__(self, batch, template, slot_of_input):
        jitted = jit_function(template)
        self.batch = batch
        self.program, self.precision = jitted.program, jitted.precision
        self.input_types = [variable.type for variable, slot
                            in zip(template.maker.fgraph.inputs, slot_of_input) if slot is None]
        self.slot_of_input = slot_of_input
        # Outputs that are new shared values go back into the state, in slot order.
        updates = sorted((slot_of_input[i], o) for o, i in jitted.updates.items())
        self.written = [slot for slot, _ in updates]
        self.written_outputs = [o for _, o in updates]
        self.returned = [o for o in range(len(self.program.outputs)) if o not in jitted.updates]
        self.read = sorted({s for s in slot_of_input if s is not None} - set(self.written))
        self._programs, self._signatures = {}, set()
        #: Seconds of each call that traced and compiled a program (new shapes, new K).
        self.compile_seconds = []

    def _one_run(self, written, read, inputs):
        values, inputs = {}, list(inputs)
        values.update(zip(self.written, written))
        values.update(zip(self.read, read))
        arguments = [inputs.pop(0) if slot is None else values[slot]
                     for slot in self.slot_of_input]
        with jax.default_matmul_precision(self.precision):
            outputs = self.program(*arguments)
        return ([outputs[o] for o in self.written_outputs],
                [outputs[o] for o in self.returned])

    def _jitted(self, same_inputs):
        # Not lax.map (the runs one after another in the program): on the CPU, XLA
        # compiles a loop body's convolutions ~6x slower (bench/RESULTS.md).
        if same_inputs not in self._programs:
            batched = jax.vmap(self._one_run, in_axes=(0, 0, None if same_inputs else 0))
            self._programs[same_inputs] = jax.jit(batched, donate_argnums=0)
        return self._programs[same_inputs]

    def _checked(self, inputs, same_inputs):
        if len(inputs) != len(self.input_types):
            raise TypeError("the function takes %d inputs, got %d"
                            % (len(self.input_types), len(inputs)))
        extra = 0 if same_inputs else 1
        checked = []
        for position, (value, kind) in enumerate(zip(inputs, self.input_types)):
            value = np.asarray(value)
            if value.ndim != kind.ndim + extra or (not same_inputs and
                                                   len(value) != len(self.batch)):
                raise TypeError("input %d: expected %d dimensions%s, got shape %s"
                                % (position, kind.ndim + extra, "" if same_inputs else
                                   " (first: the %d runs)" % len(self.batch), value.shape))
            if not np.can_cast(value.dtype, kind.dtype, "safe"):
                raise TypeError("input %d: %s cannot be cast to %s without loss"
                                % (position, value.dtype, kind.dtype))
            checked.append(value.astype(kind.dtype, copy=False))
        return checked

    def _steps_program(self, loop, scaled):
        # Each run's inputs gathered from the sources on the device: no per-step transfer.
        def one_run(written, read, sources, index, flip):
            inputs = [source[index] for source in sources]
            for position, (divisor, offset) in scaled:
                # As numpy made the inputs: float32(bytes) / divisor - offset, in float32.
                kind = self.input_types[position].dtype
                inputs[position] = (inputs[position].astype(kind) / np.asarray(divisor, kind)
                                    - np.asarray(offset, kind))
            if flip is not None:
                images = inputs[0]
                flip = flip.reshape(flip.shape + (1,) * (images.ndim - 1))
                inputs[0] = jax.numpy.where(flip, images[..., ::-1], images)
            return self._one_run(written, read, inputs)

        mapped = jax.vmap(one_run, in_axes=(0, 0, None, 0, 0))

        def one_call(written, read, sources, indices, flips, valid):
            if not loop:  # one step: no loop, whose body XLA would compile less well
                flip = None if flips is None else flips[0]
                written, returned = mapped(written, read, sources, indices[0], flip)
                return written, [value[None] for value in returned]

            def step(carry, inputs):
                index, flip, ok = inputs

                def run(state):
                    return mapped(state, read, sources, index, flip)

                def skip(state):  # a padding step: nothing changes
                    shapes = jax.eval_shape(run, state)[1]
                    return state, [jax.numpy.zeros(s.shape, s.dtype) for s in shapes]

                return jax.lax.cond(ok, run, skip, carry)

            return jax.lax.scan(step, written, (indices, flips, valid))

        return jax.jit(one_call, donate_argnums=0)

    def steps(self, sources, indices, flips=None, valid=None, scales=None):
        """Several steps of every run as one call, each run's inputs gathered on the device.

        Parameters
        ----------
        sources : sequence of arrays
            One per explicit input of the function, indexed on their first
            axis (the training set's inputs and targets); pass
            ``jax.device_put`` copies to keep them on the device between calls
        indices : int array, shape (S, K, B)
            Step ``s`` of run ``k`` gets ``source[indices[s, k]]`` of every source
        flips : bool array, shape (S, K, B), or None
            Where true, that example of the first input is reversed on its
            last axis (a left-right flip of an image)
        valid : bool array, shape (S,), or None
            Steps marked false are skipped (the state does not change, their
            outputs are zeros): padding, so that calls of any length up to S
            share one program.  All steps are valid when None.
        scales : sequence of (divisor, offset) or None, or None
            Per source: None, or a source of integers (images as bytes, a
            quarter of the float32 traffic) whose gathered values become the
            input ``float(value) / divisor - offset`` in the input's dtype
            (``data.datasets.Pixels``: the inputs bit for bit, when the data
            set made them so)

        Returns
        -------
        list of numpy arrays
            The function's outputs, each with shape (S, K, ...)

        Notes
        -----
        With S > 1 the steps run in a ``lax.scan`` loop: one call per S steps,
        which matters when a step is short (logistic regression: the per-call
        overhead is most of its time).  With S == 1 there is no loop.
        """
        indices = np.asarray(indices, dtype=np.int32)
        if indices.ndim != 3 or indices.shape[1] != len(self.batch):
            raise TypeError("indices: expected shape (steps, %d runs, batch size), got %s"
                            % (len(self.batch), indices.shape))
        if flips is not None:
            flips = np.asarray(flips, dtype=bool)
            if flips.shape != indices.shape:
                raise TypeError("flips: expected shape %s, got %s" % (indices.shape, flips.shape))
        if len(sources) != len(self.input_types):
            raise TypeError("the function takes %d inputs, got %d sources"
                            % (len(self.input_types), len(sources)))
        scales = [None] * len(sources) if scales is None else list(scales)
        if len(scales) != len(sources):
            raise TypeError("scales: expected one per source (%d), got %d"
                            % (len(sources), len(scales)))
        for position, (source, kind, scale) in enumerate(zip(sources, self.input_types, scales)):
            integers = scale is not None and np.issubdtype(source.dtype, np.integer)
            if np.ndim(source) != kind.ndim or not (integers or str(source.dtype) == kind.dtype):
                raise TypeError("source %d: expected %d dimensions of %s%s, got shape %s of %s"
                                % (position, kind.ndim, kind.dtype, " (or integers, scaled)"
                                   if scale is not None else "", np.shape(source), source.dtype))
        valid = np.ones(len(indices), bool) if valid is None else np.asarray(valid, bool)
        loop = len(indices) > 1
        scaled = tuple((position, (float(scale[0]), np.asarray(scale[1])))
                       for position, scale in enumerate(scales) if scale is not None)
        key = ("steps", loop, tuple((position, divisor, offset.tobytes())
                                    for position, (divisor, offset) in scaled))
        if key not in self._programs:
            self._programs[key] = self._steps_program(loop, scaled)
        # jit traces anew for flips or none, each shape and K: each first call compiles
        signature = key + (flips is not None, len(self.batch), indices.shape) + tuple(
            np.shape(source) for source in sources)
        return self._run(self._programs[key], signature, list(sources), indices, flips, valid)

    def __call__(self, *inputs, same_inputs=False):
        inputs = self._checked(inputs, same_inputs)
        signature = (len(self.batch), same_inputs) + tuple(v.shape for v in inputs)
        return self._run(self._jitted(same_inputs), signature, inputs)

    def _run(self, program, signature, *arguments):
        """Call a batched program on the state; the returned outputs as NumPy arrays.

        The updated shared values replace theirs in the state; a call with a
        new ``signature`` (shapes, K) compiled, and its time is recorded.
        """
        state = self.batch.state
        start = time.perf_counter()
        with warnings.catch_warnings():
            # On the CPU, XLA may decline to reuse a donated buffer; that is harmless.
            warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
            written, returned = program([state[s] for s in self.written],
                                        [state[s] for s in self.read], *arguments)
        for slot, value in zip(self.written, written):
            state[slot] = value
        results = [np.asarray(value) for value in returned]
        if signature not in self._signatures:
            self._signatures.add(signature)
            self.compile_seconds.append(time.perf_counter() - start)
        return results


def _stack(values):
    return jax.device_put(np.stack([np.asarray(value) for value in values]))


class RunBatch:
    """K runs of one program: their stacked state and their functions, batched.

    Parameters
    ----------
    runs : sequence of sequences of theano functions
        Each run's compiled JAX functions in the same roles, e.g.
        ``[(train_fn, val_fn), ...]`` from one ``compile_functions`` call per
        run.  The first run's graphs are traced; every run must share them
        (:func:`shares_program`).

    Attributes
    ----------
    functions : list of BatchedFunction
        One per role: ``functions[i]`` calls every run's ``i``-th function
    state : list of JAX arrays
        Per slot (see :meth:`variables`), every run's value stacked on the
        first axis.  Kept on the device; the arrays a call updates are
        donated to it, so do not keep references to them across calls.

    Raises
    ------
    ValueError
        For no runs, a function not compiled for the JAX backend, or runs
        whose functions do not share a program

    Notes
    -----
    While a run is in the batch, its shared variables are not updated:
    :meth:`write_back` copies the batch's values into them (before a
    checkpoint is saved from them), :meth:`reload` copies the values you
    set on them into the batch (a new learning rate before an epoch, a
    checkpoint restored).  To take a run out (it diverged, or it is done),
    :meth:`remove` it; to add one (a run resumed from its checkpoint),
    :meth:`add` it.  Each changes K and so compiles the programs anew at
    their next call; a diverged run can instead be left in the batch and its
    outputs ignored, since no value crosses from one run to another.
    """

    def __init__(self, runs):
        runs = [list(functions) for functions in runs]
        if not runs:
            raise ValueError("a RunBatch needs at least one run")
        self._template = runs[0]
        self._layout = SlotLayout(self._template)
        self.functions = [BatchedFunction(self, function, slot_of_input)
                          for function, slot_of_input
                          in zip(self._template, self._layout.inputs_slots)]
        self._runs, self._variables = [], []
        for functions in runs:
            self._check(functions)
            self._runs.append(functions)
            self._variables.append(self._layout.variables(functions))
        self.state = [_stack(variable.get_value(borrow=True) for variable in slot)
                      for slot in zip(*self._variables)]

    def __len__(self):
        return len(self._runs)

    def _check(self, functions):
        if len(functions) != len(self._template) or \
                not all(map(shares_program, self._template, functions)):
            raise ValueError("the run's functions differ from the first run's in more than "
                             "values (a graph constant or a shape); batch them separately")

    def run_functions(self, index):
        """The functions run ``index`` (0-based, in the batch's current order) was made of."""
        return list(self._runs[index])

    def variables(self, index):
        """Run ``index``'s shared variables in slot order (that of ``state``).

        The order is that of the run's functions' ``get_shared()``, function by
        function, each storage once: a clone that shares its original's
        storage (``theano.clone``) is left out, since it holds the same value.
        """
        return list(self._variables[index])

    def write_back(self, runs=None):
        """Copy the batch's values into the runs' shared variables.

        Parameters
        ----------
        runs : sequence of int or None
            The runs to write (indices in the batch); all when None
        """
        runs = range(len(self)) if runs is None else runs
        for slot, stacked in enumerate(self.state):
            values = np.asarray(stacked)  # one transfer per slot for all runs
            for index in runs:
                self._variables[index][slot].set_value(values[index].copy(), borrow=True)

    def reload(self, variables):
        """Copy the values of some runs' shared variables into the batch.

        Parameters
        ----------
        variables : iterable of shared variables
            Each one of a run in the batch (e.g. every run's learning rate
            after ``set_value``); ValueError for one that is not
        """
        where = {id(variable.container): (index, slot)
                 for index, run_variables in enumerate(self._variables)
                 for slot, variable in enumerate(run_variables)}
        changed = {}
        for variable in variables:
            if id(variable.container) not in where:
                raise ValueError("%s is not a shared variable of a run in this batch"
                                 % variable)
            index, slot = where[id(variable.container)]
            changed.setdefault(slot, {})[index] = np.asarray(variable.get_value(borrow=True))
        for slot, values in changed.items():
            stacked = np.array(self.state[slot])
            for index, value in values.items():
                stacked[index] = value
            self.state[slot] = jax.device_put(stacked)

    def remove(self, runs):
        """Take runs out of the batch; the others keep their values and order.

        Parameters
        ----------
        runs : sequence of int
            Indices of the runs to remove.  Their shared variables keep what
            they last held (call :meth:`write_back` first to save their
            latest values); the batch must keep at least one run.
        """
        keep = [index for index in range(len(self)) if index not in set(runs)]
        if not keep:
            raise ValueError("cannot remove every run of a batch; make a new one instead")
        kept = np.asarray(keep)
        self.state = [stacked[kept] for stacked in self.state]
        self._runs = [self._runs[index] for index in keep]
        self._variables = [self._variables[index] for index in keep]

    def add(self, functions):
        """Add a run, from the current values of its shared variables.

        Parameters
        ----------
        functions : sequence of theano functions
            The run's compiled JAX functions, in the batch's roles

        Returns
        -------
        int
            The run's index in the batch (the last)
        """
        functions = list(functions)
        self._check(functions)
        variables = self._layout.variables(functions)
        self.state = [jax.numpy.concatenate([stacked, _stack([variable.get_value(borrow=True)])])
                      for stacked, variable in zip(self.state, variables)]
        self._runs.append(functions)
        self._variables.append(variables)
        return len(self) - 1
