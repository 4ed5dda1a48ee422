"""The project's modules import one way: no cycles, each layer only from the layers below.

The imports are read with ``ast`` from the source (function-level imports included), not
by importing anything, so the test sees every import a module can make.  Layers, from the
bottom (see README.md's "What is here"):

==========  ==============================================================================
0 base      errors
1 env       compat (Theano's flags, Lasagne and NumPy 2 shims)
2 rules     amsgrad (update rules), ops (the project's Theano ops)
3 backends  backends (the C mode, the JAX linker and graph evaluator)
4 models    models, data
5 records   experiments.records (a run's identity, the registries, metrics, plug-ins)
6 store     experiments.store (the results layout: atomic files, lock, run directories,
            data source, packed runs, history, checkpoint, machine, threads)
7 runs      experiments.training (a run's life, alone, batched), experiments.synthetic
8 launch    experiments.launch (the training command line, options, grid, its worker)
9 commands  experiments.run, experiments.grid, plots.make_figures (may draw: plots too)
plots       plots.* : the run store and below, never Theano (checked by importing)
==========  ==============================================================================
"""
import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("compat", "ops", "backends", "models", "data", "experiments", "plots")
TOP_MODULES = ("errors", "amsgrad")

LAYERS = [
    ("base", ["errors"]),
    ("env", ["compat"]),
    ("rules", ["amsgrad", "ops"]),
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
#: What plots may import besides itself: the run store and the records below it, without
#: Theano (not records.metrics, not records.schedule's Theano expression).
PLOTS_MAY_IMPORT = ("errors", "experiments.records.config", "experiments.records.setups",
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
                      "def f():\n    from plots.results import find_runs\n")
    modules = {"errors": "", "experiments": "", "experiments.records": "",
               "experiments.records.config": "",
               "plots.results": "", "plots": ""}
    assert imports_of(str(source), modules) == {"errors", "experiments.records.config",
                                                "plots.results"}


def test_cycle_finder_finds_a_cycle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_the_projects_modules():
    graph = import_graph()
    assert len(graph) > 40  # the walker found the project
    assert cycles(graph) == []


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


@pytest.mark.parametrize("module", ["plots.results", "plots.report", "plots.figures",
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
