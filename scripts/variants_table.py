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
reproduction/variants`` (the optimum is -1).
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


def table():
    """The README's table, as Markdown lines."""
    agreement = json.load(open(AGREEMENT)) if os.path.exists(AGREEMENT) else {}
    summary = json.load(open(SUMMARY)) if os.path.exists(SUMMARY) else {}
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
        lines.append("| `%s` | %s | %s | %s | %s | %s | %s | %s | not measured |" % (
            name, library, maximum, epsilon, correction, agrees,
            "%+.3f (%g)" % (online["final_x"], online["lr"]) if online else "-",
            "%+.3f" % stochastic["final_x"] if stochastic else "-"))
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
