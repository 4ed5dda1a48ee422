"""Runs batched into one program (backends.batched) against the same runs trained alone.

Every run is built as ``experiments.training.alone`` builds it (its own seeds, its
own learning rate, amsgrad updates, the training and validation functions of
``compile_functions`` on the JAX backend) and gets its own minibatches.  The
reference is each run trained alone by its own JAX functions.

Exactness, measured with JAX 0.4.30 on the CPU: the dropout generators'
states are bit for bit those of the runs alone; each run's matrix products
are the same alone and batched (``run_dot``: one batched product both ways when
large, each run's own when small; a plain batched product would round
otherwise, issue 22), but XLA's grouped convolution rounds some float32 sums
differently from the single-run ones, even in the first step's forward pass
for CifarNet, so outputs agree within float32 rounding (its amplification
by Adam's steps and by batch normalization of few examples is stated at
:func:`assert_same_runs`).  Between batches of different sizes, and between a
batch and the same batch rebuilt from its written-back state, XLA's kernels
are the same: runs left in a batch after another is removed, and runs resumed
into a batch, follow their uninterrupted trajectories bit for bit.
"""
import collections

import numpy as np
import pytest

import compat  # noqa: F401  (Theano flags before lasagne)
import lasagne
import models
from experiments.records.config import RunConfig, run_seeds
from experiments.training.alone import compile_functions, state_variables
from test_backends import small_conv_net

jax = pytest.importorskip("jax", reason="JAX is not installed")
from backends import compile_function  # noqa: E402
from backends.batched import RunBatch, group_by_program, shares_program  # noqa: E402
from backends.jax_ops.elementwise import run_dot  # noqa: E402
from data.datasets import Pixels  # noqa: E402

L = lasagne.layers

#: Run k's learning rate; run k also has its own seeds (weights, dropout streams).
LEARNING_RATES = (0.01, 0.001, 0.003)
BATCH_SIZE = 8
#: Minibatch sizes: 128 (the blog's) makes products that are one batched product
#: for a batch of runs; 8 makes products small enough to stay each run's own.
ROWS = {"128 rows": 128, "8 rows": 8}


def dropout_logreg(input_shape, num_classes):
    """Logistic regression behind a dropout layer: a MRG31k3p stream per run."""
    network = L.DropoutLayer(L.InputLayer((None,) + input_shape), p=0.2)
    return L.DenseLayer(network, num_classes, nonlinearity=lasagne.nonlinearities.softmax)


#: name -> (setup the config names, builder f(input_shape, num_classes), input shape)
NETWORKS = {
    "logreg": ("logreg", dropout_logreg, (1, 28, 28)),
    "ffnn": ("ffnn", lambda shape, classes: models.build("ffnn", shape, classes), (1, 28, 28)),
    # every custom op (batch norm, LRN) and dropout, at a size for the fast tier
    "conv": ("cifarnet", lambda shape, classes: small_conv_net(), (3, 16, 16)),
    "cifarnet": ("cifarnet", lambda shape, classes: models.build("cifarnet", shape, classes),
                 (3, 32, 32)),
    "small_vgg": ("small_vgg", lambda shape, classes: models.build("small_vgg", shape, classes),
                  (3, 32, 32)),
}

Run = collections.namedtuple("Run", "train val rate lr state params")


def make_run(network, index, **fields):
    """Run ``index`` of a network, compiled as experiments.training.alone compiles it."""
    setup, build, shape = NETWORKS[network]
    settings = dict(optimizer="amsgrad", lr=LEARNING_RATES[index], beta2=0.99,
                    bias_correction=True)
    settings.update(fields)
    config = RunConfig(setup=setup, run=index, **settings)
    lasagne.random.set_rng(np.random.RandomState(run_seeds(config)[0]))
    output = build(shape, 10)
    train, val, rate = compile_functions(output, config, 10, backend="jax")
    params = {id(p) for p in L.get_all_params(output, trainable=True)}
    return Run(train, val, rate, config.lr, state_variables(train, val), params)


def make_runs(network, indices=(0, 1, 2)):
    return [make_run(network, index) for index in indices]


def minibatches(network, steps, runs=len(LEARNING_RATES), batch_size=BATCH_SIZE, val_size=16):
    """Each run's own minibatches (steps, runs, batch_size, ...) and one validation batch."""
    shape = NETWORKS[network][2]
    rng = np.random.RandomState(1)
    xs = rng.rand(steps, runs, batch_size, *shape).astype("float32")
    ys = rng.randint(0, 10, (steps, runs, batch_size)).astype("int32")
    return (xs, ys, rng.rand(val_size, *shape).astype("float32"),
            rng.randint(0, 10, val_size).astype("int32"))


def state_values(run):
    return [np.array(variable.get_value()) for variable in run.state]


def train_alone(run, xs, ys, val_x, val_y, halve_at=None):
    """(steps + 1, 2) losses and accuracies, the validation last; the run's state after."""
    outputs = []
    for step, (x, y) in enumerate(zip(xs, ys)):
        if step == halve_at:  # as the schedule lowers the rate before an epoch
            run.rate.set_value(np.float32(run.lr / 2))
        outputs.append(run.train(x, y))
    outputs.append(run.val(val_x, val_y))
    return np.array(outputs, dtype=np.float64), state_values(run)


def train_batched(batch, runs, xs, ys, halve_at=None):
    """(runs, steps, 2) outputs of the batch's training function."""
    outputs = []
    for step, (x, y) in enumerate(zip(xs, ys)):
        if step == halve_at:
            for run in runs:
                run.rate.set_value(np.float32(run.lr / 2))
            batch.reload([run.rate for run in runs])
        outputs.append(batch.functions[0](x, y))
    return np.array(outputs, dtype=np.float64).transpose(2, 0, 1)


def validate_batched(batch, val_x, val_y):
    """(runs, 1, 2): every run on the same validation batch."""
    return np.array(batch.functions[1](val_x, val_y, same_inputs=True),
                    dtype=np.float64).T[:, None, :]


def assert_same_runs(alone, batched, runs, steps):
    """Batched runs' outputs and states against the runs alone, within float32 rounding.

    Measured after 2-3 steps (logreg, conv, cifarnet / small_vgg's batch norm
    of 8 examples, which amplifies rounding): first losses relative 1e-7; later
    ones 1e-7 / 4e-4 (allowed 1e-3).  Adam moves every parameter by about its
    learning rate whatever the gradient's size, so a near-zero gradient rounded
    to the other sign moves a parameter the other way: single parameters differ
    by up to 0.05 / 0.8 of a step (allowed: two per step), the median by
    2e-6 / 2.4e-3 of a step (allowed 1e-2); other float state's median by
    2e-6 / 5e-3 of its scale (allowed 2e-2).  A wrong learning rate, dropout mask
    or statistic moves the median by whole steps.
    """
    for run, (outputs, state), batch_outputs, batch_state in zip(runs, alone, *batched):
        np.testing.assert_allclose(batch_outputs[0], outputs[0], rtol=1e-6)
        np.testing.assert_allclose(batch_outputs[:, 0], outputs[:, 0], rtol=1e-3)
        np.testing.assert_allclose(batch_outputs[:, 1], outputs[:, 1], atol=1.01 / BATCH_SIZE)
        for variable, value, batch_value in zip(run.state, state, batch_state):
            if value.dtype.kind == "i":  # the dropout streams
                np.testing.assert_array_equal(batch_value, value, err_msg=variable.name)
                continue
            difference = np.abs(batch_value - value)
            if id(variable) in run.params:
                assert difference.max() <= 2 * steps * run.lr, variable.name
                assert np.median(difference) <= 1e-2 * run.lr, variable.name
            else:
                scale = np.abs(value).max() + 1e-12
                assert np.median(difference) <= 2e-2 * scale, variable.name


def trained_both_ways(network, steps, **sizes):
    """The three runs alone and batched, from the same seeds, with the rate halved midway."""
    xs, ys, val_x, val_y = minibatches(network, steps, **sizes)
    runs = make_runs(network)
    alone = [train_alone(run, xs[:, k], ys[:, k], val_x, val_y, halve_at=steps // 2)
             for k, run in enumerate(runs)]
    runs = make_runs(network)
    batch = RunBatch([(run.train, run.val) for run in runs])
    outputs = train_batched(batch, runs, xs, ys, halve_at=steps // 2)
    outputs = np.concatenate([outputs, validate_batched(batch, val_x, val_y)], axis=1)
    batch.write_back()
    return runs, alone, (outputs, [state_values(run) for run in runs])


@pytest.mark.parametrize("network, steps", [
    ("logreg", 3), ("conv", 3),
    pytest.param("cifarnet", 3, marks=pytest.mark.slow),
    pytest.param("small_vgg", 2, marks=pytest.mark.slow)])
def test_batched_runs_match_runs_trained_alone(network, steps):
    runs, alone, batched = trained_both_ways(network, steps)
    assert_same_runs(alone, batched, runs, steps)


@pytest.mark.parametrize("rows", sorted(ROWS))
@pytest.mark.parametrize("network", ["logreg", "ffnn"])
def test_dense_runs_batched_are_the_runs_alone_bit_for_bit(network, rows):
    # At 128 rows every product is one batched product (validation's 1024 rows too),
    # at 8 each run's own: either way each run's numbers are its numbers alone.
    batch_size = ROWS[rows]
    runs, alone, (outputs, states) = trained_both_ways(network, 3, batch_size=batch_size,
                                                       val_size=8 * batch_size)
    for run, (run_outputs, run_state), batch_outputs, batch_state in zip(
            runs, alone, outputs, states):
        np.testing.assert_array_equal(batch_outputs, run_outputs)
        for variable, value, batch_value in zip(run.state, run_state, batch_state):
            np.testing.assert_array_equal(batch_value, value, err_msg=variable.name)


#: The products of a logistic regression's step on MNIST (128 x 784 x 10), as
#: f(dot, x, w, g): the forward pass, the weights' gradient (a transposed operand).
PRODUCTS = {"forward": lambda dot, x, w, g: dot(x, w),
            "weights' gradient": lambda dot, x, w, g: dot(x.T, g)}

def product_operands(runs, rows, shared_input):
    rng = np.random.RandomState(0)
    x = rng.randn(runs, rows, 784).astype("float32")
    w = rng.randn(runs, 784, 10).astype("float32")
    g = rng.randn(runs, rows, 10).astype("float32")
    return (x[0] if shared_input else x), w, g


@pytest.mark.parametrize("runs", [1, 2, 4, 7])
@pytest.mark.parametrize("product", sorted(PRODUCTS))
@pytest.mark.parametrize("rows", sorted(ROWS))
@pytest.mark.parametrize("shared_input", [False, True], ids=["own inputs", "same inputs"])
def test_a_batched_product_is_each_run_s_own_product_bit_for_bit(product, rows, runs,
                                                                  shared_input):
    # jnp.dot under jax.vmap is one batched product, which XLA's CPU backend computes
    # with oneDNN's batched kernel, whose float32 sums round otherwise than a single
    # product's (Eigen's, at these shapes; issue 22): run_dot makes a run alone use
    # the batched kernel too, and oneDNN computes a batch's members alike whatever
    # its size.
    def function(x, w, g):
        return PRODUCTS[product](run_dot, x, w, g)

    x, w, g = product_operands(runs, ROWS[rows], shared_input)
    mapped = jax.vmap(function, in_axes=(None if shared_input else 0, 0, 0))
    batched = np.asarray(jax.jit(mapped)(x, w, g))
    for run in range(runs):
        x_run = x if shared_input else x[run]
        own = np.asarray(jax.jit(function)(x_run, w[run], g[run]))
        np.testing.assert_array_equal(batched[run], own, err_msg="run %d" % run)
        exact = PRODUCTS[product](np.dot, *(np.float64(a) for a in (x_run, w[run], g[run])))
        np.testing.assert_allclose(own, exact, rtol=1e-4, atol=1e-4 * np.abs(exact).max())


@pytest.mark.parametrize("rows, products", [("128 rows", 1), ("8 rows", 4)])
def test_a_batch_of_large_products_is_one_product_not_one_per_run(rows, products):
    # On the CPU the per-run path applies only to small products: a batch of 4 runs'
    # logistic regression steps at 128 rows is one batched product (issue 30: the
    # products unrolled run by run cost 2.3 ms a step of 15 runs against 0.7 ms).
    x, w, g = product_operands(4, ROWS[rows], False)
    mapped = jax.vmap(lambda x, w: run_dot(x, w))
    program = jax.jit(mapped).lower(x, w).as_text()
    assert program.count("stablehlo.dot_general") == products
    alone = jax.jit(run_dot).lower(x[0], w[0]).as_text()
    assert alone.count("stablehlo.dot_general") == 1


def assert_identical_states(runs, other_runs):
    for run, other in zip(runs, other_runs):
        for variable, value, other_value in zip(run.state, state_values(run),
                                                state_values(other)):
            np.testing.assert_array_equal(value, other_value, err_msg=variable.name)


def test_a_diverged_run_leaves_the_batch_and_the_others_go_on_unchanged():
    xs, ys, _, _ = minibatches("conv", 4)
    xs[1, 1, 0, 0, 0, 0] = np.nan  # run 1 diverges in step 2, for real
    runs = make_runs("conv")
    batch = RunBatch([(run.train, run.val) for run in runs])
    outputs = train_batched(batch, runs, xs[:2], ys[:2])
    assert np.isnan(outputs[1, 1, 0]) and np.isfinite(outputs[[0, 2]]).all()
    batch.remove([1])
    assert [run.train for run in runs[::2]] == [batch.run_functions(k)[0] for k in (0, 1)]
    later = train_batched(batch, runs[::2], xs[2:, ::2], ys[2:, ::2])
    batch.write_back()
    # The same two runs batched from the start, never with run 1.
    kept = make_runs("conv", (0, 2))
    pair = RunBatch([(run.train, run.val) for run in kept])
    pair_outputs = train_batched(pair, kept, xs[:, ::2], ys[:, ::2])
    pair.write_back()
    np.testing.assert_array_equal(np.concatenate([outputs[::2], later], axis=1), pair_outputs)
    assert_identical_states(runs[::2], kept)


def test_written_back_runs_resume_batched_or_alone():
    xs, ys, val_x, val_y = minibatches("conv", 4)
    uninterrupted = make_runs("conv")
    batch = RunBatch([(run.train, run.val) for run in uninterrupted])
    expected = train_batched(batch, uninterrupted, xs, ys)
    expected_val = validate_batched(batch, val_x, val_y)
    batch.write_back()

    runs = make_runs("conv")
    batch = RunBatch([(run.train, run.val) for run in runs])
    first = train_batched(batch, runs, xs[:2], ys[:2])
    batch.write_back()
    saved = [state_values(run) for run in runs]  # a checkpoint of each run
    resumed = make_runs("conv")  # rebuilt from the same seeds, then restored
    for run, values in zip(resumed, saved):
        for variable, value in zip(run.state, values):
            variable.set_value(value)
    batch = RunBatch([(run.train, run.val) for run in resumed[:2]])
    assert batch.add((resumed[2].train, resumed[2].val)) == 2
    later = train_batched(batch, resumed, xs[2:], ys[2:])
    np.testing.assert_array_equal(np.concatenate([first, later], axis=1), expected)
    np.testing.assert_array_equal(validate_batched(batch, val_x, val_y), expected_val)
    batch.write_back()
    assert_identical_states(resumed, uninterrupted)

    # Alone, each run continues from its written-back state with its own function.
    alone = [train_alone(run, xs[2:, k], ys[2:, k], val_x, val_y)
             for k, run in enumerate(runs)]
    assert_same_runs(alone, (np.concatenate([expected[:, 2:], expected_val], axis=1),
                             [state_values(run) for run in uninterrupted]), runs, 4)


def test_graph_constants_split_runs_into_separate_programs():
    runs = [make_run("logreg", 0), make_run("logreg", 1),  # lr, seeds: values
            make_run("logreg", 0, beta2=0.999), make_run("logreg", 0, optimizer="adam"),
            make_run("logreg", 0, bias_correction=False), make_run("logreg", 2)]
    functions = [(run.train, run.val) for run in runs]
    assert shares_program(runs[0].train, runs[1].train)
    assert not shares_program(runs[0].train, runs[2].train)
    assert group_by_program(functions) == [[0, 1, 5], [2], [3], [4]]
    with pytest.raises(ValueError, match="differ from the first run's .* batch them separately"):
        RunBatch(functions[:3])
    batch = RunBatch(functions[:2])
    with pytest.raises(ValueError, match="batch them separately"):
        batch.add(functions[4])
    import theano.tensor as T
    x = T.vector("x")
    with pytest.raises(ValueError, match="not compiled for the JAX backend"):
        RunBatch([[compile_function([x], x.sum(), backend="c")]])


def test_inputs_are_checked_against_the_batch():
    xs, ys, _, _ = minibatches("logreg", 1)
    batch = RunBatch([(run.train, run.val) for run in make_runs("logreg", (0, 1))])
    with pytest.raises(TypeError, match="first: the 2 runs"):
        batch.functions[0](xs[0], ys[0])  # three runs' minibatches for two runs
    with pytest.raises(TypeError, match="float64 cannot be cast to float32"):
        batch.functions[0](xs[0, :2].astype("float64"), ys[0, :2])
    with pytest.raises(ValueError, match="not a shared variable of a run in this batch"):
        batch.reload([make_run("logreg", 2).rate])


@pytest.mark.parametrize("as_bytes", [False, True], ids=["floats", "bytes"])
@pytest.mark.parametrize("network, per_call", [("logreg", 3), ("conv", 1)])
def test_steps_gather_and_flip_on_the_device_as_the_host_would(network, per_call, as_bytes):
    """``BatchedFunction.steps`` (inputs gathered by index, or gathered as bytes and made
    into the inputs, flipped, several steps a call, padding steps skipped) against the
    batch's step called with the host's minibatches.

    Bit for bit: the dense network also in a loop of steps; the convolutional one one
    step a call (in a loop's body XLA compiles convolutions otherwise, and the sums
    round differently), as experiments/training/batched.py calls it.
    """
    shape = NETWORKS[network][2]
    rng = np.random.RandomState(2)
    pixels = Pixels(rng.randint(0, 256, (40,) + shape).astype("uint8"), 256,
                    rng.rand(*shape).astype("float32"))  # as MNIST's: bytes / 256 - mean
    images = pixels.inputs() if as_bytes else rng.rand(40, *shape).astype("float32")
    labels = rng.randint(0, 10, 40).astype("int32")
    sources = [pixels.pixels if as_bytes else images, labels]
    scales = [(pixels.divisor, pixels.offset), None] if as_bytes else None
    indices = rng.randint(0, 40, (6, 2, BATCH_SIZE))
    flips = rng.rand(6, 2, BATCH_SIZE) < 0.5
    runs = make_runs(network, indices=(0, 1))
    host = RunBatch([(run.train, run.val) for run in runs])
    expected = []
    for step in range(len(indices)):
        x = images[indices[step]]  # (runs, BATCH_SIZE, ...)
        x[flips[step]] = x[flips[step]][..., ::-1]
        expected.append(host.functions[0](x, labels[indices[step]]))
    expected = np.array(expected, dtype=np.float64)  # (steps, outputs, runs)

    runs = make_runs(network, indices=(0, 1))
    device = RunBatch([(run.train, run.val) for run in runs])
    got = []
    padding = 1 if per_call > 1 else 0  # a loop's calls are padded, a single step not
    for begin in range(0, len(indices), per_call):
        take = np.arange(begin, begin + per_call + padding) % len(indices)
        valid = np.arange(per_call + padding) < per_call
        outputs = np.array(device.functions[0].steps(sources, indices[take], flips[take],
                                                     valid, scales))
        assert np.all(outputs[:, per_call:] == 0)  # a padding step's outputs
        got.append(outputs[:, :per_call])
    got = np.concatenate(got, axis=1).transpose(1, 0, 2)
    np.testing.assert_array_equal(got, expected)
    for host_value, device_value in zip(host.state, device.state):
        np.testing.assert_array_equal(np.asarray(host_value), np.asarray(device_value))
