"""
Time one training epoch of a network with the JAX backend, and the same network in PyTorch.

Made for a GPU machine (JAX and PyTorch with CUDA, NumPy 2: ``compat`` then
loads Theano through :mod:`compat.numpy2`, C compiler off), it runs on
any machine with JAX.  Random data of CIFAR-10's shape (the data set need not
be there).  The JAX side compiles the experiments' own training function
(:func:`experiments.training.alone.compile_functions`: the network, AMSGrad, the
learning rate schedule) with ``backend="jax"``; every step returns the loss to
the host, as the training loop does.  An epoch is extrapolated from the mean
step time after warm-up: CIFAR-10's 50,000 images in batches of 128 are 390
steps.

::

    python bench/gpu_epoch.py [--setup vgg] [--steps 50] [--warmup 5]
        [--batch-size 128] [--precision float32] [--mrg auto|jump|scan] [--no-torch]

Prints one line per measurement and, at the end, a JSON summary.
"""
import argparse
import json
import platform
import time


import compat  # noqa: F401,E402  (NumPy 2 shims, Theano flags, Lasagne shims)
import numpy as np

#: CIFAR-10's training images per epoch, in full batches of 128.
EPOCH_STEPS = 50000 // 128


def _time_steps(step, steps, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.mean(times))


def time_jax(setup, batch_size, steps, warmup, precision, mrg="auto"):
    """Compile time and (median, mean) seconds per step of the JAX backend."""
    import jax
    import lasagne

    import backends.jax_linker
    import backends.jax_ops.mrg_random
    backends.jax_ops.mrg_random.MRG_JUMP_AHEAD = {"auto": None, "jump": True, "scan": False}[mrg]
    import models
    from experiments.records.config import RunConfig
    from experiments.training.alone import compile_functions

    config = RunConfig(setup=setup, optimizer="amsgrad", lr=0.001, beta2=0.99,
                       bias_correction=True, run=0, batch_size=batch_size)
    lasagne.random.set_rng(np.random.RandomState(0))
    network = models.build(setup, (3, 32, 32), 10)
    rng = np.random.RandomState(1)
    inputs = rng.rand(batch_size, 3, 32, 32).astype("float32")
    targets = rng.randint(0, 10, batch_size).astype("int32")
    start = time.perf_counter()
    if precision == "float32":
        train_fn, _, _ = compile_functions(network, config, 10, backend="jax")
    else:  # compile_functions has no precision knob: the same graph, another mode
        original = backends.jax_linker.jax_mode
        backends.jax_linker.jax_mode = lambda p="float32": original(precision)
        try:
            train_fn, _, _ = compile_functions(network, config, 10, backend="jax")
        finally:
            backends.jax_linker.jax_mode = original
    graph_seconds = time.perf_counter() - start
    train_fn(inputs, targets)  # traces and compiles
    compile_seconds = graph_seconds + sum(train_fn.fn.compile_seconds)
    median, mean = _time_steps(lambda: train_fn(inputs, targets), steps, warmup)
    return {"device": str(jax.devices()[0]), "jax": jax.__version__,
            "compile_s": compile_seconds, "graph_s": graph_seconds,
            "step_s": median, "step_mean_s": mean}


def time_torch(setup, batch_size, steps, warmup, tf32=True):
    """(median, mean) seconds per step of the same network in PyTorch (GPU if there is one).

    ``tf32``: PyTorch's default, TensorFloat-32 in cuDNN's convolutions (not in
    matrix products); False computes them in float32 as the JAX side does.
    """
    import torch

    import torch_models

    torch.backends.cudnn.allow_tf32 = tf32

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    network = torch_models.build(setup, (3, 32, 32), 10).to(device)
    optimizer = torch_models.make_optimizer(network)
    inputs = torch.rand(batch_size, 3, 32, 32, device=device)
    targets = torch.randint(0, 10, (batch_size,), device=device)
    network.train()
    start = time.perf_counter()
    torch_models.train_step(network, optimizer, inputs, targets)
    first = time.perf_counter() - start
    median, mean = _time_steps(
        lambda: torch_models.train_step(network, optimizer, inputs, targets), steps, warmup)
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    return {"device": name, "torch": torch.__version__, "tf32_convolutions": tf32,
            "first_step_s": first,
            "step_s": median, "step_mean_s": mean}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", default="vgg",
                        choices=("logreg", "ffnn", "cifarnet", "small_vgg", "vgg"))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="timed steps (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--precision", default="float32",
                        help="JAX matmul precision: float32 (default), tensorfloat32, bfloat16")
    parser.add_argument("--mrg", choices=("auto", "jump", "scan"), default="auto",
                        help="dropout's random numbers "
                             "(backends.jax_ops.mrg_random.MRG_JUMP_AHEAD)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    args = parser.parse_args(argv)
    summary = {"setup": args.setup, "batch_size": args.batch_size, "steps": args.steps,
               "epoch_steps": EPOCH_STEPS, "python": platform.python_version(),
               "numpy": np.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                               time.gmtime())}
    result = time_jax(args.setup, args.batch_size, args.steps, args.warmup, args.precision,
                      args.mrg)
    result["epoch_s"] = result["step_s"] * EPOCH_STEPS
    summary["jax_%s_mrg_%s" % (args.precision, args.mrg)] = result
    print("jax (%s, mrg %s, %s): compiled in %.1f s, %.2f ms/step, %.1f s/epoch"
          % (args.precision, args.mrg, result["device"], result["compile_s"],
             1e3 * result["step_s"], result["epoch_s"]), flush=True)
    for tf32 in ((True, False) if not args.no_torch else ()):
        result = time_torch(args.setup, args.batch_size, args.steps, args.warmup, tf32)
        result["epoch_s"] = result["step_s"] * EPOCH_STEPS
        summary["torch_tf32" if tf32 else "torch_float32"] = result
        print("torch (%s, %s convolutions): %.2f ms/step, %.1f s/epoch"
              % (result["device"], "tf32" if tf32 else "float32", 1e3 * result["step_s"],
                 result["epoch_s"]), flush=True)
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
