"""
The optimizers on the synthetic problems, with their update builders
(:mod:`experiments.records.optimizers`).

.. autosummary::
    :nosignatures:

    RunSpec
    build_step
    compile_step_function
    UnrolledSteps
    simulate
    learning_rates

:func:`build_step` asks each run's registered update builder (:func:`amsgrad.adam`,
:func:`amsgrad.amsgrad`, :func:`amsgrad.adamnc` or a plug-in's) for one
step of every run and projects each iterate onto [-1, 1], as the original
``train_synthetic.py`` did.  The original then called that compiled function
once per step from Python (:func:`compile_step_function`), about 10^5 steps a
second.  :class:`UnrolledSteps` compiles the same step, copied ``steps_per_call``
times into one graph, with Theano's C linker, so Python is visited once per
``steps_per_call`` steps; :func:`simulate` drives it block by block and keeps
the bookkeeping (loss, regret) in float64 with NumPy.

Examples
--------
>>> from experiments.synthetic.problems import online_problem
>>> from experiments.synthetic.runner import RunSpec, simulate
>>> runs = [RunSpec(online_problem(), name) for name in ("adam", "amsgrad")]
>>> adam_run, amsgrad_run = simulate(runs, steps=2000000, progress=False)
>>> adam_run.final_x, amsgrad_run.final_x < -0.9
(1.0, True)
"""
from dataclasses import dataclass, field
import math

import numpy as np

import compat  # noqa: F401  (Theano's flags, before theano is imported)
import theano
import theano.tensor as T
from theano.compile.mode import Mode, get_mode
from tqdm import tqdm

import backends
from errors import UserError
from experiments.records import config, optimizers, schedule
from experiments.synthetic.checks import check_decay_rates, check_gradients, check_simulation

__all__ = ["RunSpec", "StepGraph", "Trajectory", "build_step",
           "compile_step_function", "UnrolledSteps", "simulate", "learning_rates"]

#: Steps compiled into one call of :class:`UnrolledSteps`.  More steps amortize
#: Python's per-call cost better, but the C module takes longer to compile
#: (once; Theano caches it): see bench/synthetic.py.
STEPS_PER_CALL = 16
#: Calls per block: the unit of the progress bar and of the float64 bookkeeping.
CALLS_PER_BLOCK = 4096
#: Points kept per trajectory (the final step is always kept).
RECORD_POINTS = 1000


@dataclass(frozen=True)
class RunSpec:
    """One optimizer on one problem.

    Attributes
    ----------
    problem : experiments.synthetic.problems.Problem
    optimizer : str
        A registered optimizer (:func:`experiments.records.optimizers.names`).
    beta1, beta2 : float
        Decay rates of the moment estimates (the original code's 0.9 and 0.99).
    lr : float or None
        Its learning rate alpha; None: :func:`simulate`'s ``lr``.
    """
    problem: object
    optimizer: str
    beta1: float = 0.9
    beta2: float = 0.99
    lr: float = None


@dataclass
class StepGraph:
    """One step of every run as Theano update expressions (see :func:`build_step`).

    ``updates`` maps each shared variable (iterates, step counters, moment
    estimates) to its value after the step; ``gradients`` holds one symbolic
    scalar per distinct problem (``lanes``), ``params[i]`` is the iterate of
    ``runs[i]`` and ``lane_of_run[i]`` the index of its problem;
    ``learning_rates`` holds one symbolic scalar per distinct learning rate
    (``lrs``, the runs' rates in order), the schedule's rate of that step.
    """
    runs: list
    lanes: list
    lane_of_run: list
    params: list
    gradients: list
    learning_rates: list
    lrs: tuple
    updates: object


@dataclass
class Trajectory:
    """What :func:`simulate` records for one run.

    Attributes
    ----------
    run : RunSpec
    step : ndarray of int
        The recorded steps t (subsampled; the last one is the final step).
    x : ndarray
        The iterate after step t (projected onto [-1, 1]).
    loss : ndarray
        Mean of :math:`f_s(x_s)` over the steps s since the previous record.
    avg_regret : ndarray
        :math:`R_t / t` with :math:`R_t = \\sum_{s \\le t} f_s(x_s) - f_s(x^*)`.
    final_x, final_avg_regret : float
        The exact final values (also the last entries of ``x`` and ``avg_regret``).
    steps : int
    """
    run: RunSpec
    step: np.ndarray = field(repr=False)
    x: np.ndarray = field(repr=False)
    loss: np.ndarray = field(repr=False)
    avg_regret: np.ndarray = field(repr=False)
    final_x: float = None
    final_avg_regret: float = None
    steps: int = None


@dataclass(frozen=True)
class _Settings:
    """The RunConfig fields an update builder may take, for the synthetic runs."""
    beta1: float
    beta2: float
    epsilon: float
    bias_correction: bool


def build_step(runs, bias_correction=False, dtype="float32", epsilon=1e-8, lr=None):
    """One step of every run, from the real update builders, projected onto [-1, 1].

    Runs with the same optimizer, decay rates and learning rate share one
    builder call (one step counter), each with its own scalar iterate starting
    at x = 0.

    Parameters
    ----------
    runs : list of RunSpec
    lr : float or None
        The learning rate of the runs that give none (only which runs share a rate
        matters here: the rates are inputs of the step).
    bias_correction : bool
        Passed to the builders (the original code: off).
    dtype : str
        Type of the iterates and the optimizer state ("float32" as the original,
        or "float64"); the step counter and learning rate stay in floatX.
    epsilon : float
        The builders' epsilon.

    Returns
    -------
    StepGraph
    """
    lanes = []
    for run in runs:
        optimizers.get(run.optimizer)  # errors.UserError naming the registered ones
        if run.problem not in lanes:
            lanes.append(run.problem)
    lane_of_run = [lanes.index(run.problem) for run in runs]
    gradients = [T.scalar("g[%s]" % problem.setting, dtype=dtype) for problem in lanes]
    lrs = tuple(dict.fromkeys(_run_lr(run, lr) for run in runs))
    rates = [T.scalar("learning_rate" if len(lrs) == 1 else "learning_rate[%g]" % value,
                      dtype=theano.config.floatX) for value in lrs]
    params = [theano.shared(np.zeros((), dtype=dtype), name="x[%s,%s]" % (run.problem.setting,
                                                                           run.optimizer))
              for run in runs]

    groups = {}
    for i, run in enumerate(runs):
        groups.setdefault((run.optimizer, run.beta1, run.beta2, _run_lr(run, lr)), []).append(i)
    updates = theano.OrderedUpdates()
    for (optimizer, beta1, beta2, run_lr), members in groups.items():
        # f_t(x) = g_t x; the builder differentiates it, as in the original.
        loss = sum(gradients[lane_of_run[i]] * params[i] for i in members)
        settings = _Settings(beta1, beta2, epsilon, bias_correction)
        try:
            group_updates = optimizers.get(optimizer).updates(
                loss, [params[i] for i in members], rates[lrs.index(run_lr)], settings)
        except ValueError as exc:  # a decay rate outside [0, 1)
            raise UserError("%s; pass --beta1/--beta2 in [0, 1)" % exc)
        for i in members:
            group_updates[params[i]] = T.clip(group_updates[params[i]], -1, 1)
        updates.update(group_updates)
    return StepGraph(list(runs), lanes, lane_of_run, params, gradients, rates, lrs, updates)


def _run_lr(run, lr):
    return lr if run.lr is None else run.lr


def compile_step_function(step):
    """The original's way: a compiled function that makes one step per call.

    Returns ``f(g_0, ..., g_{lanes-1}, rate_0, ...)`` (one gradient per problem, in
    ``step.lanes`` order, then one learning rate per ``step.lrs``); read the iterates
    with ``step.params[i].get_value()``.
    """
    return theano.function(step.gradients + step.learning_rates, [], updates=step.updates)


class UnrolledSteps:
    """``steps_per_call`` steps of a :class:`StepGraph` in one compiled C function.

    The step graph is optimized once (fusion, no in-place operations because it
    is copied), copied ``steps_per_call`` times, each copy reading the state
    the previous one wrote, and compiled with Theano's C linker: one C module,
    cached by Theano after its first compilation.

    The state (iterates, step counters, moment estimates: the keys of
    ``step.updates``) travels as one vector in and out of each call rather than
    through shared variables, whose updates cost Python time per variable and
    call; :meth:`initial_state` reads it from the shared variables and
    :meth:`store` writes it back.

    With ``backend="jax"`` the same unrolled graph is compiled by
    :func:`backends.compile_function` into one ``jax.jit`` program instead.
    """

    def __init__(self, step, steps_per_call=STEPS_PER_CALL, backend="c"):
        self.variables = list(step.updates.keys())
        placeholders = [variable.type() for variable in self.variables]
        inputs = placeholders + step.gradients + step.learning_rates
        next_state = theano.clone(list(step.updates.values()),
                                  replace=dict(zip(self.variables, placeholders)))
        # The 'py' linker compiles nothing: only the optimized graph is wanted.
        one_step = theano.function(inputs, next_state,
                                   mode=get_mode("FAST_RUN").excluding("inplace").clone(linker="py"))
        graph = one_step.maker.fgraph
        assert len(graph.inputs) == len(inputs)

        self.steps_per_call = steps_per_call
        self.state_dtype = theano.scalar.upcast(*(v.dtype for v in self.variables))
        dtype = step.params[0].dtype
        gradients = T.matrix("gradients", dtype=dtype)
        rates = T.matrix("learning_rates", dtype=theano.config.floatX)
        state = T.vector("state", dtype=self.state_dtype)
        current = [T.cast(state[i], v.dtype) for i, v in enumerate(self.variables)]
        param_index = [self.variables.index(param) for param in step.params]
        iterates = []
        for k in range(steps_per_call):
            iterates += [current[i] for i in param_index]
            replace = current + [gradients[k, lane] for lane in range(len(step.gradients))]
            replace += [rates[k, j] for j in range(len(step.learning_rates))]
            current = theano.clone(graph.outputs, replace=dict(zip(graph.inputs, replace)))
        iterates = T.stack(iterates).reshape((steps_per_call, len(step.params)))
        next_state = T.stack([T.cast(v, self.state_dtype) for v in current])
        if backend != "c":
            self._function = backends.compile_function([gradients, rates, state],
                                                       [iterates, next_state], backend=backend)
            return
        self._function = None
        function = theano.function(
            [gradients, rates, state], [theano.Out(iterates, borrow=True), next_state],
            mode=Mode(linker="c", optimizer="merge"))
        # Call the linked C thunk on the function's storage cells directly:
        # Function.__call__ costs ~10 us of Python per call, as much as the 16 steps.
        self._inputs = [container.storage for container in function.input_storage]
        self._outputs = [container.storage for container in function.output_storage]
        self._run = function.fn

    def initial_state(self):
        """The state vector of the shared variables' current values."""
        return np.array([v.get_value() for v in self.variables], dtype=self.state_dtype)

    def store(self, state):
        """Write a state vector back into the shared variables."""
        for variable, value in zip(self.variables, state):
            variable.set_value(np.asarray(value, dtype=variable.dtype))

    def __call__(self, gradients, learning_rates, state):
        """Advance ``steps_per_call`` steps.

        Parameters
        ----------
        gradients : ndarray, shape (steps_per_call, lanes)
            The gradients of each step and problem, of the iterates' dtype.
        learning_rates : ndarray, shape (steps_per_call, len(step.lrs))
            floatX; shape (steps_per_call,) where the runs share one rate.
        state : ndarray
            The state before the first step (see :meth:`initial_state`).

        Returns
        -------
        iterates : ndarray, shape (steps_per_call, runs)
            The iterate of each run before each step; Theano's buffer, so
            copy it before the next call.
        state : ndarray
            The state after the last step.
        """
        learning_rates = learning_rates.reshape(len(gradients), -1)
        if self._function is not None:
            return tuple(self._function(gradients, learning_rates, state))
        for cell, value in zip(self._inputs, (gradients, learning_rates, state)):
            cell[0] = value
        self._run()
        return self._outputs[0][0], self._outputs[1][0]


def learning_rates(lr, lr_schedule, first_step, count):
    """Learning rates of steps ``first_step, ..., first_step + count - 1`` (float64).

    ``"constant"``: ``lr``; ``"inv-sqrt"``: ``lr / sqrt(t)`` as the original's
    ``--lr_decay`` (which, in its stochastic setting, never advanced t); see
    :meth:`experiments.records.schedule.Schedule.update_rates`.
    """
    return schedule.get(lr_schedule).update_rates(lr, first_step, count)


def simulate(runs, steps, lr=0.001, lr_schedule="constant", bias_correction=False,
             dtype="float32", steps_per_call=STEPS_PER_CALL, record_points=RECORD_POINTS,
             progress=True, backend="c"):
    """Run every :class:`RunSpec` for ``steps`` steps from x = 0; record their trajectories.

    All runs advance together, one compiled call per ``steps_per_call`` steps;
    runs on the same problem see the same gradients (the same draws).

    Parameters
    ----------
    runs : list of RunSpec
    steps : int
        Number of steps, > 0.
    lr : float
        Learning rate alpha, > 0, of the runs that give none (:attr:`RunSpec.lr`).
    lr_schedule : {"constant", "inv-sqrt"}
        Learning rate at step t: alpha, or alpha / sqrt(t).
    bias_correction : bool
        The builders' bias correction (off in the original).
    dtype : {"float32", "float64"}
        Type of the iterates and optimizer state.
    steps_per_call : int
        Steps compiled into one call (a different value compiles another module).
    record_points : int
        About how many points of each trajectory to keep.
    progress : bool
        Show a progress bar (tqdm, on stderr).
    backend : {'c', 'jax'}
        What runs the compiled steps (:mod:`backends`); the C code is the
        faster here (the steps are tiny, Python's cost per call dominates).

    Returns
    -------
    list of Trajectory
        In the order of ``runs``.

    Notes
    -----
    With :math:`f_t(x) = g_t x`, the loss at step t is evaluated at the iterate
    :math:`x_t` before the step, and the regret against the problem's
    optimum :math:`x^*` is :math:`R_T = \\sum_{t \\le T} g_t (x_t - x^*)`.  The
    iterates come from Theano in ``dtype``; the sums are taken in float64 (a
    float32 sum of 9e6 terms of size ~10 would lose the digits that matter).
    """
    for rate in dict.fromkeys(_run_lr(run, lr) for run in runs):
        check_simulation(steps, rate, lr_schedule)
    for problem in {run.problem for run in runs}:
        check_gradients(problem, dtype)
    check_decay_rates(runs, dtype)
    backends.check_backend(backend)
    step = build_step(runs, bias_correction=bias_correction, dtype=dtype, lr=lr)
    stepper = _Stepper(step, steps_per_call, backend, dtype)
    recorder = _Recorder(runs, step, steps, record_points)
    block_steps = steps_per_call * CALLS_PER_BLOCK
    streams = [problem.gradient_stream() for problem in step.lanes]
    with tqdm(total=steps, unit="step", unit_scale=True, disable=not progress,
              desc="synthetic") as bar:
        for first in range(1, steps + 1, block_steps):
            count = min(block_steps, steps - first + 1)
            grads64 = np.stack([stream.take(count) for stream in streams], axis=1)
            rates = np.stack([learning_rates(rate, lr_schedule, first, count) for rate in step.lrs],
                             axis=1).astype(theano.config.floatX)
            iterates = stepper.run(grads64.astype(dtype), rates)
            recorder.add_block(first, iterates, stepper.params(), grads64)
            bar.update(count)
    stepper.store()
    return recorder.trajectories()


class _Stepper:
    """Runs blocks of steps through the unrolled function, the rest one step at a time."""

    def __init__(self, step, steps_per_call, backend, dtype):
        self.step, self.steps_per_call, self.backend, self.dtype = (
            step, steps_per_call, backend, dtype)
        self.unrolled = UnrolledSteps(step, steps_per_call, backend)
        self.single = None  # compiled if the steps do not divide into calls
        self.state = self.unrolled.initial_state()
        self.param_index = [self.unrolled.variables.index(param) for param in step.params]

    def run(self, grads, rates):
        """The iterates before each of the block's steps, one column per run."""
        count, size = len(grads), self.steps_per_call
        iterates = np.empty((count, len(self.step.lane_of_run)), dtype=self.dtype)
        whole = count - count % size
        for k in range(0, whole, size):
            iterates[k:k + size], self.state = self.unrolled(grads[k:k + size],
                                                             rates[k:k + size], self.state)
        for k in range(whole, count):
            self.single = self.single or UnrolledSteps(self.step, 1, self.backend)
            iterates[k:k + 1], self.state = self.single(grads[k:k + 1], rates[k:k + 1],
                                                        self.state)
        return iterates

    def params(self):
        """The iterates after the last step run."""
        return self.state[self.param_index]

    def store(self):
        self.unrolled.store(self.state)


class _Recorder:
    """The float64 bookkeeping of the trajectories: regret and loss sums, recorded points."""

    def __init__(self, runs, step, steps, record_points):
        self.runs, self.steps = runs, steps
        self.lane_of_run = np.array(step.lane_of_run)
        self.optimum = np.array([run.problem.optimum for run in runs])
        # Record at multiples of the problems' periods: R_t / t sampled at drifting
        # phases of a period would draw a sawtooth that is not there.
        period = math.lcm(*(problem.period or 1 for problem in step.lanes))
        self.record_every = period * max(1, -(-steps // (record_points * period)))
        self.recorded = {name: [] for name in ("step", "x", "loss", "avg_regret")}
        self.regret_total = np.zeros(len(runs))   # R_t
        self.loss_total = np.zeros(len(runs))     # sum of f_s(x_s), s <= t
        self.loss_at_record, self.last_record = self.loss_total, 0

    def add_block(self, first, iterates, params_after, grads64):
        """Account for steps ``first, ...`` given the iterates before them and after the last."""
        x_before = iterates.astype(np.float64)
        x_after = np.vstack([x_before[1:], params_after])
        g = grads64[:, self.lane_of_run]
        regret_cum = self.regret_total + np.cumsum(g * (x_before - self.optimum), axis=0)
        loss_cum = self.loss_total + np.cumsum(g * x_before, axis=0)
        t = np.arange(first, first + len(iterates))
        for k in np.nonzero((t % self.record_every == 0) | (t == self.steps))[0]:
            self.recorded["step"].append(t[k])
            self.recorded["x"].append(x_after[k])
            self.recorded["avg_regret"].append(regret_cum[k] / t[k])
            self.recorded["loss"].append((loss_cum[k] - self.loss_at_record)
                                         / (t[k] - self.last_record))
            self.loss_at_record, self.last_record = loss_cum[k], t[k]
        self.regret_total, self.loss_total = regret_cum[-1], loss_cum[-1]

    def trajectories(self):
        columns = {name: np.array(values) for name, values in self.recorded.items()}
        return [Trajectory(run, step=columns["step"], x=columns["x"][:, i],
                           loss=columns["loss"][:, i], avg_regret=columns["avg_regret"][:, i],
                           final_x=float(columns["x"][-1, i]),
                           final_avg_regret=float(columns["avg_regret"][-1, i]),
                           steps=self.steps)
                for i, run in enumerate(self.runs)]
