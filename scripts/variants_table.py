"""Print the README's table of the AMSGrad variants, from the runs committed under
``reproduction/variants/`` (and, with ``--measure``, measure their agreement first).

Usage, from the repository root::

    python scripts/variants_table.py                 # the table, from what is committed
    python scripts/variants_table.py --measure       # first write agreement.json (needs
                                                     # make conformance: torch, optax, keras)

The agreement column is the largest difference, over 1,000 steps and every element of
four parameters, between the project's builder and the library's optimizer on
``tests/test_variants.py``'s gradient stream, in float32 unit roundoffs of the distance
travelled (the test allows 256), at the blog's setting (lr 0.001, beta2 0.999) and at
lr 0.01, beta2 0.99, and lr 0.1, beta1 0, beta2 0.9.  The synthetic columns are the final
iterates of ``python experiments/run.py synthetic --optimizer ... --results-dir
reproduction/variants`` (the optimum is -1).  The logreg column compares each variant with
the blog's Adam on the blog's cells at lr 0.01 and 0.001 (beta2 0.99 and 0.999, 5 runs each,
150 epochs; ``reproduction/variants/histories`` beside the blog's grid in
``reproduction/histories``), with ``plots/verdict/two_optimizers.py``'s calibrated
comparison, on the final validation loss (the blog: "AMSGrad usually has the lower
validation loss") and the final training loss ("Adam has the lowest final training loss"):
the blog's conclusion changes where the variant's decision against Adam differs from the
blog's AMSGrad's on the same cells.  PyTorch's and Optax's always correct the bias, so they
are matched with the cells with bias correction, Reddi et al.'s with those without.
"""
import argparse
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS_DIR = os.path.join(ROOT, "reproduction", "variants")
AGREEMENT = os.path.join(VARIANTS_DIR, "agreement.json")
SUMMARY = os.path.join(VARIANTS_DIR, "synthetic", "summary.json")
VARIANT_RUNS = os.path.join(VARIANTS_DIR, "histories")
BLOG_RUNS = os.path.join(ROOT, "reproduction", "histories")
#: The blog's cells the variants were run on, and what their comparison is taken on.
LOGREG_RATES = (0.01, 0.001)
LOGREG_MEASURES = (("final_val_loss", "validation loss"), ("final_train_loss", "training loss"))
#: Variants that always correct the bias (matched with the blog's cells with correction).
ALWAYS_CORRECTED = ("amsgrad_pytorch", "amsgrad_optax")

#: name, library, where the maximum is taken, where epsilon sits, bias correction,
#: the tests' key of its library (None: no library ships it)
ROWS = [
    ("amsgrad", "the blog; Keras 3.15.1 `Adam(amsgrad=True)`", "raw v_t",
     "sqrt(v_hat) + eps", "folded into the step size; switch (on in Keras)", "keras"),
    ("amsgrad_pytorch", "PyTorch 2.13.0 `Adam(amsgrad=True)`", "raw v_t",
     "sqrt(v_hat) / sqrt(1 - b2^t) + eps", "always (m and the denominator)", "pytorch"),
    ("amsgrad_optax", "Optax 0.2.3 `amsgrad`", "bias-corrected v_t / (1 - b2^t)",
     "sqrt(v_hat) + eps", "always (m and v, before the maximum)", "optax"),
    ("amsgrad_reddi", "none (Reddi et al., Algorithm 2)", "raw v_t",
     "sqrt(v_hat) + eps (the paper: none)", "none; alpha / sqrt(t), beta1 lambda^(t-1)", None),
]


def _tests_module():
    # The comparison is the conformance test's own, not a copy of it.
    spec = importlib.util.spec_from_file_location(
        "test_variants", os.path.join(ROOT, "tests", "test_variants.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure():
    """Each variant's builder against its library, in float32 unit roundoffs; writes AGREEMENT."""
    import compat  # noqa: F401  (Theano's flags, before theano is imported)
    tests = _tests_module()
    tests.ROUNDOFFS = 1
    grads = tests.gradient_stream()
    result = {}
    for key, (builder, keywords, library, _) in tests.VARIANTS.items():
        worst = 0.0
        for lr, beta1, beta2, epsilon in tests.SETTINGS:
            theirs = library(grads, lr, beta1, beta2, epsilon)
            ours = tests.run_builder(builder, grads, learning_rate=lr, beta1=beta1,
                                     beta2=beta2, epsilon=epsilon, **keywords)
            worst = max(worst, tests.mismatch(ours, theirs))
        result[key] = worst
        print("%s: %.0f unit roundoffs" % (key, worst), file=sys.stderr)
    with open(AGREEMENT, "w") as out:
        json.dump(result, out, indent=1, sort_keys=True)
        out.write("\n")


def logreg_cells():
    """The blog's logreg cells at LOGREG_RATES, of every optimizer, with the variants'."""
    import dataclasses

    from plots.verdict.cells import group_runs
    from plots.verdict.results import find_runs

    runs = []
    for directory in (BLOG_RUNS, VARIANT_RUNS):
        if os.path.isdir(directory):
            runs += [run for run in find_runs(directory)[0] if run.config.setup == "logreg"
                     and run.config.epochs == 150 and run.config.lr_schedule == "linear"
                     and run.config.lr in LOGREG_RATES]
    cells = {}
    for key, group in group_runs(runs).items():
        if key.optimizer in ALWAYS_CORRECTED:
            key = dataclasses.replace(key, bias_correction=True)
        cells[key] = group
    return cells


def _decided(comparison):
    grid = comparison.grid
    return "no difference" if grid.decision == "none" else (
        "%s better" % (comparison.first if grid.decision == "first" else comparison.second))


def logreg_outcomes(cells):
    """Per variant: its decision against Adam and the blog's AMSGrad's on the same cells, in
    words; None where the variant has no finished runs."""
    from plots.verdict.two_optimizers import compare_optimizers

    outcomes = {}
    for name, *_ in ROWS:
        if name == "amsgrad" or not any(key.optimizer == name and group.finished
                                        for key, group in cells.items()):
            continue
        # The variant's cells (relabelled by logreg_cells) and the blog's of its correction.
        correction = name in ALWAYS_CORRECTED
        mine = {key: group for key, group in cells.items() if key.bias_correction == correction}
        parts, changed = [], False
        for measure, words in LOGREG_MEASURES:
            blog = compare_optimizers(mine, "amsgrad", "adam", measure)
            variant = compare_optimizers(mine, name, "adam", measure)
            changed |= variant.grid.decision != blog.grid.decision
            parts.append("%s: P(beats Adam) %.2f, %s (the blog's AMSGrad %.2f, %s)" % (
                words, variant.grid.probability, _decided(variant), blog.grid.probability,
                _decided(blog)))
        outcomes[name] = "%s: %s over %d cells" % ("**yes**" if changed else "no",
                                                  "; ".join(parts), variant.grid.cells)
    return outcomes


def table():
    """The README's table, as Markdown lines."""
    agreement = json.load(open(AGREEMENT)) if os.path.exists(AGREEMENT) else {}
    summary = json.load(open(SUMMARY)) if os.path.exists(SUMMARY) else {}
    logreg = logreg_outcomes(logreg_cells())
    lines = ["| variant | library | maximum of | epsilon | bias correction | agreement with "
             "its library | synthetic online: final x (lr) | stochastic: final x | changes the "
             "blog's logreg conclusion |", "|---" * 9 + "|"]
    for name, library, maximum, epsilon, correction, key in ROWS:
        if key is None:
            agrees = "no library; float64 referee only"
        elif key in agreement:
            agrees = "within %.0f float32 roundoffs (%.1e of the distance travelled)" % (
                agreement[key], agreement[key] * 2.0 ** -24)
        else:
            agrees = "not measured"
        online = summary.get("online", {}).get(name)
        stochastic = summary.get("stochastic", {}).get(name)
        lines.append("| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, library, maximum, epsilon, correction, agrees,
            "%+.3f (%g)" % (online["final_x"], online["lr"]) if online else "-",
            "%+.3f" % stochastic["final_x"] if stochastic else "-",
            "(the blog's)" if name == "amsgrad" else logreg.get(name, "not measured")))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true",
                        help="first run each variant against its library (make conformance)")
    args = parser.parse_args(argv)
    if args.measure:
        measure()
    print("\n".join(table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
