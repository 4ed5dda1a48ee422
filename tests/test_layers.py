"""The project's modules import one way: no cycles, each layer only from the layers below.

The imports are read with ``ast`` from the source (function-level imports included), not
by importing anything, so the test sees every import a module can make.  Layers, from the
bottom (see README.md's "What is here"):

==========  ==============================================================================
0 base      errors
1 env       compat (Theano's flags, Lasagne and NumPy 2 shims)
2 rules     amsgrad, amsgrad_variants (update rules), ops (the project's Theano ops)
3 backends  backends (the C mode, the JAX linker and graph evaluator, the JAX forms of
            Theano's ops: backends.jax_ops, one module a family, none importing another)
4 models    models, data
5 records   experiments.records (a run's identity, the registries, curves, metrics, plug-ins)
6 store     experiments.store (the results layout: atomic files, lock, run directories,
            data source, packed runs, history, checkpoint, machine, threads)
7 runs      experiments.training (a run's life, alone, batched), experiments.synthetic
8 launch    experiments.launch (the training command line, options, grid, its worker)
9 commands  experiments.run, experiments.grid, plots.make_figures (may draw: plots too)
plots       plots.* : the run store and below, never Theano (checked by importing); in it
            plots.verdict.* (reading runs, comparing, claims, the report's findings: NumPy
            only) below the drawing (figures, mcgill, synthetic, report): the drawing
            imports the verdict, the verdict never imports the drawing nor matplotlib
==========  ==============================================================================
"""
import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("compat", "ops", "backends", "models", "data", "experiments", "plots")
TOP_MODULES = ("errors", "amsgrad", "amsgrad_variants")

LAYERS = [
    ("base", ["errors"]),
    ("env", ["compat"]),
    ("rules", ["amsgrad", "amsgrad_variants", "ops"]),
    ("backends", ["backends"]),
    ("models", ["models", "data"]),
    # "experiments" (the package itself, and any module of it not placed below) is held
    # to the lowest of its layers.
    ("records", ["experiments", "experiments.records"]),
    ("store", ["experiments.store"]),
    ("runs", ["experiments.training", "experiments.synthetic"]),
    ("launch", ["experiments.launch"]),
    ("commands", ["experiments.run", "experiments.grid", "plots.make_figures"]),
]
#: The verdict: below the drawing modules of plots, which import it, never the reverse.
VERDICT = "plots.verdict"
#: What loading the verdict must not load: the drawing library, Theano and its kin.
VERDICT_NEVER_LOADS = ("matplotlib", "theano", "lasagne", "jax")
#: What plots may import besides itself: the run store and the records below it, without
#: Theano (not records.metrics, not records.schedule's Theano expression).
PLOTS_MAY_IMPORT = ("errors", "experiments.records.config", "experiments.records.curves",
                    "experiments.records.setups",
                    "experiments.records.protocols", "experiments.records.plugins",
                    "experiments.records.optimizers", "experiments.store.atomic",
                    "experiments.store.rundir", "experiments.store.datasource",
                    "experiments.store.packed", "experiments.store.history")


def project_modules():
    """{dotted module name: path} of every module of the project (tests and bench aside)."""
    found = {name: os.path.join(REPO, name + ".py") for name in TOP_MODULES}
    for package in PACKAGES:
        for root, _, files in os.walk(os.path.join(REPO, package)):
            for filename in files:
                if filename.endswith(".py"):
                    path = os.path.join(root, filename)
                    parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    found[".".join(parts)] = path
    return found


def imports_of(path, modules):
    """The project modules ``path`` imports (the module itself, for ``from X import name``)."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import module`` imports the submodule (and runs the package's
            # __init__, which is not an edge: it is below its submodules); ``from module
            # import name`` imports the module.
            submodules = {"%s.%s" % (node.module, alias.name) for alias in node.names}
            submodules &= set(modules)
            names.update(submodules or {node.module})
    return {name for name in names if name in modules}


def import_graph():
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def layer_of(module):
    """Index of the most specific layer entry that names ``module`` or a package of it."""
    best = None
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member or module.startswith(member + "."):
                if best is None or len(member) > best[1]:
                    best = (index, len(member))
    return None if best is None else best[0]


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_walker_sees_imports_of_every_form(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import errors\nfrom experiments.records import config\n"
                      "def f():\n    from plots.verdict.results import find_runs\n")
    modules = {"errors": "", "experiments": "", "experiments.records": "",
               "experiments.records.config": "",
               "plots.verdict.results": "", "plots": ""}
    assert imports_of(str(source), modules) == {"errors", "experiments.records.config",
                                                "plots.verdict.results"}


def test_cycle_finder_finds_a_cycle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_the_projects_modules():
    graph = import_graph()
    assert len(graph) > 40  # the walker found the project
    assert cycles(graph) == []


def test_each_family_of_jax_ops_stands_alone_and_the_package_registers_them_all():
    graph = import_graph()
    families = {module for module in graph if module.startswith("backends.jax_ops.")}
    assert families == {"backends.jax_ops." + family for family in (
        "elementwise", "indexing", "convolution", "pooling", "classifier", "mrg_random")}
    # importing the package registers every family's ops with jax_funcify
    assert graph["backends.jax_ops"] >= families
    wrong = ["%s -> %s" % (family, target) for family in sorted(families)
             for target in sorted(graph[family]) if target.startswith("backends.jax_ops")]
    assert wrong == []
    assert all(layer_of(module) == layer_of("backends") for module in families)


def test_every_module_imports_only_from_its_layer_or_below():
    graph = import_graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        if module.startswith("plots"):
            continue
        layer = layer_of(module)
        assert layer is not None, "%s is in no layer; add it to LAYERS" % module
        for target in sorted(targets):
            if target.startswith("plots") and LAYERS[layer][0] != "commands":
                wrong.append("%s -> %s (experiments know nothing of plotting)" % (module, target))
            elif not target.startswith("plots") and layer_of(target) > layer:
                wrong.append("%s (%s) -> %s (%s)" % (module, LAYERS[layer][0], target,
                                                     LAYERS[layer_of(target)][0]))
    assert wrong == []


def test_plots_depend_on_the_run_store_only():
    graph = import_graph()
    wrong = ["%s -> %s" % (module, target)
             for module, targets in sorted(graph.items()) if module.startswith("plots")
             for target in sorted(targets)
             if not target.startswith("plots") and target not in PLOTS_MAY_IMPORT
             and target != "experiments"]
    assert wrong == []


def in_verdict(module):
    return module == VERDICT or module.startswith(VERDICT + ".")


def test_the_verdict_never_imports_the_drawing():
    graph = import_graph()
    verdict = sorted(module for module in graph if in_verdict(module))
    assert len(verdict) >= 6  # results, compare, cells, claims, findings and the package
    wrong = ["%s -> %s" % (module, target) for module in verdict
             for target in sorted(graph[module])
             if target.startswith("plots") and not in_verdict(target)]
    # Outside packages too, read from the source: not even a function-level import.
    modules = project_modules()
    for module in verdict:
        with open(modules[module]) as handle:
            tree = ast.parse(handle.read(), modules[module])
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [])
            wrong += ["%s -> %s" % (module, name) for name in names
                      if name.split(".")[0] in VERDICT_NEVER_LOADS]
    assert wrong == []


def test_the_drawing_imports_the_verdict():
    # The verdict's modules are where the drawing reads runs from (the order is used).
    graph = import_graph()
    assert any(in_verdict(target) for target in graph["plots.figures"])
    assert any(in_verdict(target) for target in graph["plots.report"])


def test_loading_the_verdict_loads_no_drawing():
    verdict = sorted(module for module in project_modules() if in_verdict(module))
    code = ("import sys; import %s; bad = sorted({m.split('.')[0] for m in sys.modules "
            "if m.split('.')[0] in %r} | {m for m in sys.modules "
            "if m.startswith('plots.') and not m.startswith(%r)});"
            " print(bad); sys.exit(1 if bad else 0)"
            % (", ".join(verdict), VERDICT_NEVER_LOADS, VERDICT))
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("module", ["plots.verdict.results", "plots.report", "plots.figures",
                                    "plots.synthetic", "plots.mcgill", "plots.make_figures",
                                    "experiments.store.rundir", "experiments.store.history",
                                    "experiments.store.packed", "experiments.records.config",
                                    "experiments.store.machine"])
def test_reading_results_never_loads_theano(module):
    code = ("import sys, %s; bad = sorted(m for m in ('theano', 'lasagne', 'jax') "
            "if m in sys.modules);"
            " print(bad); sys.exit(1 if bad else 0)" % module)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("module", ["experiments.grid", "experiments.launch.worker",
                                    "experiments.launch.grid"])
def test_what_grid_workers_import_first_loads_no_numpy(module):
    # A spawned worker re-imports experiments/grid.py (as __mp_main__) and unpickles its
    # tasks from experiments.launch.worker before it limits its BLAS threads.
    code = "import sys, %s; sys.exit('numpy' in sys.modules)" % module
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


#: The longest a module of plots may be (issue 29): past it, a module holds more than one job.
MOST_LINES = 500


#: Modules allowed past MOST_LINES, and why.
LONGER = {}


def test_no_module_is_over_500_lines_unless_said_why():
    # Modules grow with every finding; split them along their seams (as the verdict's
    # distances, calibration and judging; the report's opening, sections and CSV) instead.
    lengths = {}
    for name, path in project_modules().items():
        with open(path) as handle:
            lengths[name] = sum(1 for _ in handle)
    assert "plots.verdict.findings" in lengths and "plots.report" in lengths
    long = ["%s: %d lines" % item for item in sorted(lengths.items())
            if item[1] > MOST_LINES and item[0] not in LONGER]
    assert not long, long
    assert all(lengths[name] > MOST_LINES for name in LONGER)  # no stale excuse
