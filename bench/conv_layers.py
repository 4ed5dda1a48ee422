#!/usr/bin/env python
"""Time of each convolution of a network, forward and both gradients, C backend against PyTorch.

    python bench/conv_layers.py [--setup vgg] [--repeats 5] [--warmup 1] [--json OUT]

Where a network's training step goes, layer by layer: for every distinct
convolution of ``--setup`` (:mod:`models.networks`, batch 128), the three
passes a training step runs: the output (``fwd``), the gradient with respect to
the input (``grad_in``; not run for the first layer in training) and the one
with respect to the weights (``grad_w``).  The C backend's are the ops the
experiments compile (``CorrMM*`` with OpenMP, :mod:`backends.c_openmp`), from
the layer's own ``convolve``; PyTorch's (optional, benchmark-only) are
``conv2d``, ``torch.nn.grad.conv2d_input`` and ``conv2d_weight`` (oneDNN on
the CPU).  Timed in turns, median of ``--repeats``.  Also one matrix product
(2048^3, float32) through Theano's BLAS, which the ``CorrMM`` ops call: the
rate a product of this machine's BLAS reaches, to read the convolutions'
rates against.  Prints a Markdown table, the totals of a training step's
convolutions and the machine's load before and after.
"""
import argparse
import collections
import copy
import json
import os
import platform
import sys


import compat  # noqa: F401  (Theano flags before theano)
import lasagne
import numpy as np
import theano
import theano.tensor as T

import models
from backends import compile_function
from step_time import (BATCH_SIZE, NUM_CLASSES, _interleaved_medians,
                            import_torch)
from experiments.records import setups

PASSES = ("fwd", "grad_in", "grad_w")
GEMM_SIZE = 2048

#: One distinct convolution: input shape (batch included), weight shape, padding.
ConvShape = collections.namedtuple("ConvShape", "input_shape weight_shape pad")


def conv_layers(setup):
    """``[(ConvShape, [layer names], layer), ...]`` of ``setup``'s convolutions, in order."""
    shape = setups.get(setup).input_shape
    lasagne.random.set_rng(np.random.RandomState(0))
    network = models.build(setup, shape, NUM_CLASSES)
    found = collections.OrderedDict()
    for layer in lasagne.layers.get_all_layers(network):
        if isinstance(layer, lasagne.layers.Conv2DLayer):
            key = ConvShape((BATCH_SIZE,) + tuple(layer.input_shape[1:]),
                            layer.get_W_shape(), tuple(layer.pad))
            found.setdefault(key, ([], layer))[0].append(layer.name)
    return [(key, names, layer) for key, (names, layer) in found.items()]


def forward_flops(conv):
    """Multiply-adds x 2 of one pass (each of the three passes does as many)."""
    batch, _, height, width = conv.input_shape
    out_channels, in_channels, kh, kw = conv.weight_shape
    out_h = height + 2 * conv.pad[0] - kh + 1
    out_w = width + 2 * conv.pad[1] - kw + 1
    return 2.0 * batch * out_channels * out_h * out_w * in_channels * kh * kw


def theano_passes(conv, layer, rng):
    """``{pass: call}`` of the C backend's three passes of ``layer``."""
    x = T.tensor4("x")
    # The layer's own path (Lasagne 0.1 pads the input, then convolves), less
    # the bias and the nonlinearity some layers add.
    bare = copy.copy(layer)
    bare.b, bare.nonlinearity = None, lasagne.nonlinearities.identity
    output = bare.get_output_for(x)
    grad = T.tensor4("grad")
    grad_in, grad_w = theano.grad(None, [x, layer.W], known_grads={output: grad})
    inputs = rng.rand(*conv.input_shape).astype("float32")
    grads = rng.rand(*layer.get_output_shape_for(conv.input_shape)).astype("float32")
    functions = {"fwd": (compile_function([x], output), (inputs,)),
                 "grad_in": (compile_function([x, grad], grad_in), (inputs, grads)),
                 "grad_w": (compile_function([x, grad], grad_w), (inputs, grads))}
    return {name: (lambda f=f, a=a: f(*a)) for name, (f, a) in functions.items()}


def torch_passes(conv, rng):
    """``{pass: call}`` of PyTorch's three passes of the same convolution."""
    import torch
    import torch.nn.functional as F
    from torch.nn.grad import conv2d_input, conv2d_weight

    inputs = torch.from_numpy(rng.rand(*conv.input_shape).astype("float32"))
    weights = torch.from_numpy(rng.rand(*conv.weight_shape).astype("float32"))
    grads = F.conv2d(inputs, weights, padding=conv.pad)
    no_grad = torch.no_grad()  # as a decorator: the call runs without autograd
    return {"fwd": no_grad(lambda: F.conv2d(inputs, weights, padding=conv.pad)),
            "grad_in": no_grad(lambda: conv2d_input(inputs.shape, weights, grads,
                                                   padding=conv.pad)),
            "grad_w": no_grad(lambda: conv2d_weight(inputs, weights.shape, grads,
                                                   padding=conv.pad))}


def gemm_rate(repeats):
    """GFLOP/s of a ``GEMM_SIZE``-cubed float32 product through Theano's BLAS."""
    a, b = T.matrix("a"), T.matrix("b")
    product = compile_function([a, b], T.dot(a, b))
    rng = np.random.RandomState(0)
    values = [rng.rand(GEMM_SIZE, GEMM_SIZE).astype("float32") for _ in range(2)]
    seconds = _interleaved_medians({"gemm": lambda: product(*values)}, repeats, 1)["gemm"]
    return 2.0 * GEMM_SIZE ** 3 / seconds / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", choices=[s for s in setups.names() if setups.get(s).dataset == "cifar10"],
                        default="vgg")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before them")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    torch = None if args.no_torch else import_torch()
    with_torch = torch is not None

    load_before = os.getloadavg()
    gemm = gemm_rate(args.repeats)
    rng = np.random.RandomState(1)
    rows = []
    for conv, names, layer in conv_layers(args.setup):
        contenders = {("c", name): call for name, call in theano_passes(conv, layer, rng).items()}
        if with_torch:
            contenders.update({("pytorch", name): call
                               for name, call in torch_passes(conv, rng).items()})
        medians = _interleaved_medians(contenders, args.repeats, args.warmup)
        for name in PASSES:
            c_seconds = medians[("c", name)]
            torch_seconds = medians.get(("pytorch", name))
            rows.append({"layers": names, "input_shape": conv.input_shape,
                         "weight_shape": conv.weight_shape, "pass": name,
                         "gflop": forward_flops(conv) / 1e9, "c_s": c_seconds,
                         "torch_s": torch_seconds})
        print("%s: done" % ", ".join(names), flush=True)
    load_after = os.getloadavg()

    versions = "numpy %s, theano %s" % (np.__version__, theano.__version__)
    if with_torch:
        versions += ", torch %s (%d threads)" % (torch.__version__, torch.get_num_threads())
    print("machine: %s, %d CPUs; %s; %s, batch %d, median of %d after %d warm-up"
          % (platform.processor() or platform.machine(), os.cpu_count(), versions, args.setup,
             BATCH_SIZE, args.repeats, args.warmup))
    print("load average (1/5/15 min) before: %.2f %.2f %.2f, after: %.2f %.2f %.2f"
          % (load_before + load_after))
    print("Theano's BLAS, %d^3 float32 product: %.0f GFLOP/s" % (GEMM_SIZE, gemm))
    print("| layers | input | weights | pass | GFLOP | C (ms) | C GFLOP/s | PyTorch (ms) "
          "| PyTorch GFLOP/s | C / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals = collections.Counter()
    for row in rows:
        count = len(row["layers"])
        # The first layer's input gradient is not part of a training step.
        in_step = count - (row["pass"] == "grad_in" and row["input_shape"][1] == 3)
        totals["gflop"] += in_step * row["gflop"]
        totals["c_s"] += in_step * row["c_s"]
        torch_cells = "- | - | -"
        if row["torch_s"] is not None:
            totals["torch_s"] += in_step * row["torch_s"]
            torch_cells = "%.1f | %.0f | %.2f" % (1e3 * row["torch_s"],
                                                   row["gflop"] / row["torch_s"],
                                                   row["c_s"] / row["torch_s"])
        print("| %s | %s | %s | %s | %.2f | %.1f | %.0f | %s |" % (
            " ".join(row["layers"]), "x".join(map(str, row["input_shape"])),
            "x".join(map(str, row["weight_shape"])), row["pass"], row["gflop"],
            1e3 * row["c_s"], row["gflop"] / row["c_s"], torch_cells))
    line = "a training step's convolutions: %.1f GFLOP; C %.0f ms (%.0f GFLOP/s)" % (
        totals["gflop"], 1e3 * totals["c_s"], totals["gflop"] / totals["c_s"])
    if with_torch:
        line += ", PyTorch %.0f ms (%.0f GFLOP/s), C / PyTorch %.2f" % (
            1e3 * totals["torch_s"], totals["gflop"] / totals["torch_s"],
            totals["c_s"] / totals["torch_s"])
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_before": load_before, "load_after": load_after,
                       "gemm_gflops": gemm, "rows": rows, "totals": dict(totals)}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
