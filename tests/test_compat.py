"""Lasagne 0.1 on Theano-PyMC through compat: flags, shims, and a conv net that trains."""
import os
import subprocess
import sys

import numpy as np
import pytest

import compat
import lasagne
import theano
import theano.tensor as T

from amsgrad import amsgrad


def test_flags_are_set():
    assert theano.config.floatX == "float32"
    assert theano.config.device == "cpu"
    cache = os.path.realpath(theano.config.base_compiledir)
    repo = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert not cache.startswith(repo + os.sep), "Theano's compile cache must stay out of the repo"


def test_user_flags_win():
    flags = compat.theano_flags("floatX=float64,blas.ldflags=-lmyblas")
    pairs = [kv.split("=", 1) for kv in flags.split(",")]
    keys = [k for k, _ in pairs]
    # the user's keys are not set twice, and come last (Theano: later pairs win)
    assert keys.count("floatX") == 1 and dict(pairs)["floatX"] == "float64"
    assert "blas__ldflags" not in keys and dict(pairs)["blas.ldflags"] == "-lmyblas"
    assert "device" in keys and "base_compiledir" in keys
    assert compat.theano_flags("").startswith("floatX=float32")


def test_user_flags_win_in_a_fresh_interpreter(tmp_path):
    env = dict(os.environ, THEANO_FLAGS="floatX=float64", AMSGRAD_THEANO_CACHE=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", "import compat, theano; "
         "print(theano.config.floatX, theano.config.base_compiledir)"],
        env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out == ["float64", str(tmp_path)]


def test_shims_exist():
    import theano.gof
    import theano.sandbox.rng_mrg
    import theano.tensor.signal.downsample
    assert theano.gof.Variable is theano.graph.basic.Variable
    assert theano.sandbox.rng_mrg.MRG_RandomStreams is theano.sandbox.rng_mrg.MRG_RandomStream
    compat.install_shims()  # idempotent


def test_max_pool_shim_matches_numpy():
    x = np.random.RandomState(0).rand(2, 3, 5, 6).astype("float32")
    layer = lasagne.layers.MaxPool2DLayer(lasagne.layers.InputLayer((None, 3, 5, 6)),
                                          pool_size=2)  # ignore_border=True by default
    inp = T.tensor4()
    out = theano.function([inp], lasagne.layers.get_output(layer, inp))(x)
    expected = x[:, :, :4, :6].reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5))
    assert layer.output_shape == (None, 3, 2, 3)
    np.testing.assert_array_equal(out, expected)


def test_dropout_behaves():
    lasagne.random.set_rng(np.random.RandomState(1))
    layer = lasagne.layers.DropoutLayer(lasagne.layers.InputLayer((None, 1000)), p=0.5)
    inp = T.matrix()
    x = np.ones((20, 1000), dtype="float32")
    train = theano.function([inp], lasagne.layers.get_output(layer, inp))
    test = theano.function([inp], lasagne.layers.get_output(layer, inp, deterministic=True))
    a, b = train(x), train(x)
    # kept units are rescaled by 1 / (1 - p); about half are dropped; masks differ per call
    assert set(np.unique(a)) <= {0.0, 2.0}
    assert abs((a == 0).mean() - 0.5) < 0.02
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(test(x), x)


def test_conv_net_compiles_and_trains():
    lasagne.random.set_rng(np.random.RandomState(2))
    net = lasagne.layers.InputLayer((None, 3, 12, 12))
    net = lasagne.layers.Conv2DLayer(net, 8, 3, pad="same",
                                     W=lasagne.init.HeNormal(gain="relu"))
    net = lasagne.layers.MaxPool2DLayer(net, 2)
    net = lasagne.layers.DropoutLayer(net, 0.25)
    net = lasagne.layers.DenseLayer(net, 4, nonlinearity=lasagne.nonlinearities.softmax)
    assert lasagne.layers.get_output_shape(net) == (None, 4)

    x, y = T.tensor4("x"), T.ivector("y")
    prediction = lasagne.layers.get_output(net, x)
    loss = lasagne.objectives.categorical_crossentropy(prediction, y).mean()
    params = lasagne.layers.get_all_params(net, trainable=True)
    train = theano.function([x, y], loss, updates=amsgrad(loss, params, learning_rate=0.01))
    rng = np.random.RandomState(3)
    xb = rng.rand(16, 3, 12, 12).astype("float32")
    yb = rng.randint(0, 4, 16).astype("int32")
    before = [p.get_value().copy() for p in params]
    losses = [float(train(xb, yb)) for _ in range(30)]
    assert all(not np.array_equal(b, p.get_value()) for b, p in zip(before, params))
    assert all(p.get_value().dtype == np.float32 for p in params)
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------- every module, imported first

def _project_modules():
    # Read from the file tree, sub-packages included: importing a package to list it
    # would load what its modules import before the test does.
    names = ["amsgrad", "errors"]
    for package in ("compat", "ops", "models", "experiments", "backends", "data", "plots"):
        for root, folders, files in os.walk(os.path.join(REPO, package)):
            folders.sort()
            if "__init__.py" not in files:
                folders[:] = []  # __pycache__, not a package
                continue
            dotted = os.path.relpath(root, REPO).replace(os.sep, ".")
            names.append(dotted)
            names += ["%s.%s" % (dotted, filename[:-3]) for filename in sorted(files)
                      if filename.endswith(".py") and filename not in ("__init__.py",
                                                                        "__main__.py")]
    return names


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("module", _project_modules())
def test_module_imports_first_in_a_fresh_interpreter(module):
    # As a user adding one module to their own code would: nothing imported before it
    # (not compat), no THEANO_FLAGS of ours.
    if module.startswith("backends.jax"):
        pytest.importorskip("jax", reason="the JAX backend needs jax")
    environment = {k: v for k, v in os.environ.items() if k != "THEANO_FLAGS"}
    completed = subprocess.run([sys.executable, "-c", "import %s" % module], cwd=REPO,
                               env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_headline_import_of_the_update_rules():
    environment = {k: v for k, v in os.environ.items() if k != "THEANO_FLAGS"}
    completed = subprocess.run(
        [sys.executable, "-c", "from amsgrad import amsgrad; import theano; "
                               "print(theano.config.floatX)"],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert (completed.returncode, completed.stdout) == (0, "float32\n"), completed.stderr[-2000:]
