"""The synthetic experiments: the problems, the unrolled Theano steps against the per-step
function and a float64 NumPy reference, the expected outcome, the command line and the figure."""
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import theano

from errors import UserError
from experiments.run import main as run_main
from experiments.synthetic.problems import (online_c_problem, online_problem,
                                            stochastic_problem)
from experiments.synthetic.runner import (RunSpec, UnrolledSteps, build_step,
                                          compile_step_function, learning_rates, simulate)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOAT_X = theano.config.floatX


def default_runs():
    return [RunSpec(problem, optimizer) for problem in (online_problem(), stochastic_problem())
            for optimizer in ("adam", "amsgrad")]


def numpy_reference(gradients, lrs, beta1, beta2, use_max, epsilon=1e-8):
    """Adam / AMSGrad without bias correction on [-1, 1] from x = 0, float64, from the equations.

    Returns the iterates before each step and the final iterate.
    """
    x = m = v = v_hat = 0.0
    x_before = []
    for g, lr in zip(gradients, lrs):
        x_before.append(x)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = max(v_hat, v)
        x = x - lr * m / (math.sqrt(v_hat if use_max else v) + epsilon)
        x = min(1.0, max(-1.0, x))
    return np.array(x_before), x


# --- the problems -------------------------------------------------------------------------

def test_online_gradients_follow_the_paper():
    stream = online_problem().gradient_stream()
    got = np.concatenate([stream.take(n) for n in (1, 150, 53)])  # cut anywhere
    expected = [1010.0 if t % 101 == 1 else -10.0 for t in range(1, 205)]
    np.testing.assert_array_equal(got, expected)


def test_online_c_gradients():
    got = online_c_problem(4.5).gradient_stream().take(7)
    np.testing.assert_array_equal(got, [4.5, -1, -1, 4.5, -1, -1, 4.5])


def test_stochastic_draws_are_reproducible_and_independent_of_blocks():
    n = 200000
    whole = stochastic_problem(0.01, 4711).gradient_stream().take(n)
    stream = stochastic_problem(0.01, 4711).gradient_stream()
    parts = np.concatenate([stream.take(k) for k in (1, 99999, 100000)])
    np.testing.assert_array_equal(whole, parts)
    assert set(np.unique(whole)) == {1010.0, -10.0}
    # frequency of the large gradient within 5 standard deviations of p
    assert abs((whole > 0).mean() - 0.01) < 5 * math.sqrt(0.01 * 0.99 / n)
    other = stochastic_problem(0.01, 4712).gradient_stream().take(n)
    assert (other != whole).any()


def test_stochastic_draws_are_the_originals():
    """train_synthetic.py drew binomial(1, 0.01) from RandomStreams(RandomState(4711).randint(999999));
    Theano-PyMC's RandomStream seeds and draws the same way."""
    from theano.tensor.random.utils import RandomStream
    streams = RandomStream(np.random.RandomState(4711).randint(999999))
    draw = theano.function([], streams.binomial(1, 0.01))
    expected = np.array([draw() for _ in range(3000)])
    got = stochastic_problem(0.01, 4711).gradient_stream().take(3000) > 0
    assert expected.sum() > 10
    np.testing.assert_array_equal(got, expected == 1)


def test_optimum_follows_the_mean_gradient():
    assert online_problem().mean_gradient == pytest.approx((1010 - 100 * 10) / 101)
    assert stochastic_problem().mean_gradient == pytest.approx(0.01 * 1010 - 0.99 * 10)
    assert online_c_problem(3).mean_gradient == pytest.approx(1 / 3)
    assert online_problem().optimum == stochastic_problem().optimum == -1
    assert online_c_problem(2.01).optimum == -1
    # 0.005 * 1010 < 0.995 * 10: the mean loss decreases in x, the optimum is +1
    assert stochastic_problem(0.005).optimum == 1


@pytest.mark.parametrize("make", [lambda: online_c_problem(2), lambda: online_c_problem(1.5),
                                  lambda: online_c_problem(float("nan")),
                                  lambda: stochastic_problem(0), lambda: stochastic_problem(1),
                                  lambda: stochastic_problem(-0.1),
                                  lambda: stochastic_problem(float("nan")),
                                  lambda: stochastic_problem(0.01, -1)])
def test_bad_problem_raises_user_error(make):
    with pytest.raises(UserError):
        make()


# --- the Theano steps ---------------------------------------------------------------------

@pytest.mark.parametrize("bias_correction,lr,schedule", [(False, 0.05, "constant"),
                                                         (True, 0.5, "inv-sqrt")])
def test_unrolled_steps_equal_the_per_step_function(bias_correction, lr, schedule):
    steps, per_call = 600, 3
    step = build_step(default_runs(), bias_correction=bias_correction)
    unrolled = UnrolledSteps(step, per_call)
    per_step = compile_step_function(step)
    grads = np.stack([p.gradient_stream().take(steps) for p in step.lanes], axis=1)
    grads = grads.astype("float32")
    rates = learning_rates(lr, schedule, 1, steps).astype(FLOAT_X)

    state = unrolled.initial_state()
    unrolled_x = np.empty((steps, 4), dtype="float32")
    for k in range(0, steps, per_call):
        unrolled_x[k:k + per_call], state = unrolled(grads[k:k + per_call],
                                                     rates[k:k + per_call], state)
    per_step_x = np.empty_like(unrolled_x)
    for k in range(steps):
        per_step_x[k] = [param.get_value() for param in step.params]
        per_step(*grads[k], rates[k])

    np.testing.assert_array_equal(unrolled_x, per_step_x)
    # the whole state (iterates, counters, moments), which the per-step function left
    # in the shared variables
    np.testing.assert_array_equal(state, unrolled.initial_state())
    assert (np.abs(per_step_x) == 1).any(), "the projection was not exercised"


@pytest.mark.parametrize("backend", ["c", "jax"])
@pytest.mark.parametrize("dtype,steps_per_call,tolerance", [
    # float32: x and the moments round at ~6e-8 relative each step; measured drift over
    # these 20011 steps ~3e-5 (float64 Theano: ~2e-8, from lr rounded to float32)
    ("float32", None, 2e-4), ("float64", 4, 1e-6)])
def test_simulate_matches_float64_numpy_reference(dtype, steps_per_call, tolerance, backend):
    if backend == "jax":
        pytest.importorskip("jax", reason="JAX is not installed")
    steps, lr = 20011, 0.01  # not a multiple of steps per call: the remainder path runs too
    kwargs = {"steps_per_call": steps_per_call} if steps_per_call else {}
    trajectories = simulate(default_runs(), steps, lr=lr, dtype=dtype, record_points=steps,
                            progress=False, backend=backend, **kwargs)
    for trajectory in trajectories:
        run = trajectory.run
        gradients = run.problem.gradient_stream().take(steps)
        x_before, x_final = numpy_reference(gradients, [lr] * steps, 0.9, 0.99,
                                            use_max=run.optimizer == "amsgrad")
        x_after = np.append(x_before[1:], x_final)
        t = np.arange(1, steps + 1)
        avg_regret = np.cumsum(gradients * (x_before + 1)) / t
        loss_sum = np.cumsum(gradients * x_before)

        # recorded at multiples of the online period, and at the last step
        expected_steps = np.append(np.arange(101, steps + 1, 101), steps)
        np.testing.assert_array_equal(trajectory.step, expected_steps)
        index = expected_steps - 1
        np.testing.assert_allclose(trajectory.x, x_after[index], rtol=0, atol=tolerance)
        # losses and regrets are means of g_t x_t: off by at most max |g_t| times x's error
        np.testing.assert_allclose(trajectory.avg_regret, avg_regret[index], rtol=0,
                                   atol=1010 * tolerance)
        interval_loss = (np.diff(np.append(0, loss_sum[index]))
                         / np.diff(np.append(0, expected_steps)))
        np.testing.assert_allclose(trajectory.loss, interval_loss, rtol=0, atol=1010 * tolerance)
        assert trajectory.final_x == pytest.approx(x_final, abs=tolerance)
        assert trajectory.final_x == trajectory.x[-1] and trajectory.steps == steps
    assert any((t.x == 1.0).any() for t in trajectories), "the projection was not exercised"


def test_first_two_steps_by_hand():
    # t=1: g=1010 at x=0: m=101, v=10201, x <- -0.001; t=2: g=-10 at x=-0.001:
    # m = 0.9*101 - 1 = 89.9, v = 0.99*10201 + 1 = 10099.99, AMSGrad's v_hat stays 10201
    adam_run, amsgrad_run = simulate([RunSpec(online_problem(), "adam"),
                                      RunSpec(online_problem(), "amsgrad")],
                                     steps=2, steps_per_call=1, progress=False)
    assert adam_run.final_x == pytest.approx(-0.001 - 0.001 * 89.9 / math.sqrt(10099.99), rel=1e-6)
    assert amsgrad_run.final_x == pytest.approx(-0.001 - 0.001 * 89.9 / 101, rel=1e-6)
    for trajectory in (adam_run, amsgrad_run):
        assert list(trajectory.step) == [2]
        # R_2 = 1010 (0 + 1) - 10 (-0.001 + 1); losses 1010 * 0 and -10 * -0.001
        assert trajectory.avg_regret[0] == pytest.approx((1010 - 9.99) / 2, rel=1e-6)
        assert trajectory.loss[0] == pytest.approx(0.01 / 2, rel=1e-4)


def test_adam_ends_near_plus_one_amsgrad_near_minus_one():
    """The paper's outcome, with the original's hyperparameters.

    3,000,000 steps (not the original's 9,000,000): AMSGrad's slowest iterate is the
    bottleneck.  Online, it drifts by about lr * 10 / sqrt(v_hat) = 0.001 * 10 / 127 per
    period of 101 steps, so it needs ~1.3e6 steps from 0 to -1; stochastic, with the
    original's draws, it first reaches -1 after ~2.3e6 steps.  Adam is at +1 within 1e5.
    """
    trajectories = simulate(default_runs(), 3000000, progress=False)
    final = {(t.run.problem.setting, t.run.optimizer): t for t in trajectories}
    assert final["online", "adam"].final_x == 1.0
    assert final["online", "amsgrad"].final_x < -0.99
    assert final["stochastic", "adam"].final_x > 0.9
    assert final["stochastic", "amsgrad"].final_x < -0.8
    for setting in ("online", "stochastic"):
        adam_run, amsgrad_run = final[setting, "adam"], final[setting, "amsgrad"]
        last_third = slice(2 * len(adam_run.x) // 3, None)
        assert adam_run.x[last_third].mean() > 0.95
        assert amsgrad_run.x[last_third].mean() < -0.8
        assert amsgrad_run.final_avg_regret < adam_run.final_avg_regret / 2


# --- the command line and the figure --------------------------------------------------------

@pytest.mark.parametrize("argv", [["--steps", "0"], ["--steps", "-5"], ["--lr", "0"],
                                  ["--lr", "nan"], ["--setting", "online-c", "--c", "2"],
                                  ["--probability", "0"], ["--probability", "1.5"],
                                  ["--beta2", "1"], ["--beta1", "-0.1"],
                                  ["--lr", "1e-46", "--steps", "1000"],
                                  ["--lr", "1e39", "--steps", "1000"],
                                  ["--beta2", "0.99999999", "--steps", "1000"]])
def test_bad_input_is_one_line_and_exit_code_2(argv, capsys, tmp_path):
    code = run_main(["synthetic", "--results-dir", str(tmp_path)] + argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("run.py synthetic: error: ") and err.count("\n") == 1
    assert not (tmp_path / "synthetic").exists()


# float32: largest 3.4028235e38, smallest normal 1.1754944e-38 (IEEE 754 binary32).
@pytest.mark.parametrize("argv, says", [
    (["--c", "1e39"], "C (--c) 1e+39 is infinite in float32"),
    # 1e20 squared is 1e40 > 3.4e38: Adam's second moment would be infinite.
    (["--c", "1e20"], "C (--c) 1e+20 squared (Adam's second moment) is infinite in float32"),
    (["--c", "1e200", "--dtype", "float64"], "squared (Adam's second moment) is infinite in "
                                             "float64"),
    # 1 / (1 + 1.5e19^2) = 4.4e-39 < 1.18e-38: the default beta2 is subnormal.
    (["--c", "1.5e19"], "makes online-c's default --beta2, 1 / (1 + C^2) = 4.44e-39, which is "
                        "subnormal in float32"),
    (["--beta2", "1e-50"], "--beta2 1e-50 is 0 in float32"),
    (["--beta1", "1e-40"], "--beta1 1e-40 is subnormal in float32"),
])
def test_numbers_the_steps_cannot_hold_are_one_line(argv, says, capsys, tmp_path):
    code = run_main(["synthetic", "--setting", "online-c", "--steps", "1000", "--results-dir",
                     str(tmp_path)] + argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert not (tmp_path / "synthetic").exists()


def test_a_large_c_the_steps_can_hold_gives_finite_results(capsys, tmp_path):
    # C = 1e18: C^2 = 1e36 and 1 / (1 + C^2) = 1e-36 are normal float32 numbers.
    assert run_main(["synthetic", "--setting", "online-c", "--c", "1e18", "--steps", "1000",
                     "--no-progress", "--results-dir", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "synthetic" / "summary.json").read_text())
    values = [number for run in summary["online-c"].values() for number in run.values()]
    assert set(summary["online-c"]) == {"adam", "amsgrad", "adamnc"}
    assert len(values) == 12 and all(math.isfinite(number) for number in values)


def test_backend_jax_without_jax_says_how_to_install(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax raises ImportError
    code = run_main(["synthetic", "--steps", "100", "--backend", "jax", "--results-dir",
                     str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "pip install jax==" in err and err.count("\n") == 1
    assert not (tmp_path / "synthetic").exists()


def test_command_line_on_the_jax_backend(capsys, tmp_path):
    pytest.importorskip("jax", reason="JAX is not installed")
    results = {}
    for backend in ("c", "jax"):
        argv = ["synthetic", "--steps", "3001", "--no-progress", "--backend", backend,
                "--results-dir", str(tmp_path / backend)]
        assert run_main(argv) == 0
        out = tmp_path / backend / "synthetic"
        assert json.loads((out / "config.json").read_text())["backend"] == backend
        results[backend] = json.loads((out / "summary.json").read_text())
    capsys.readouterr()
    for setting, optimizers in results["c"].items():
        for optimizer, summary in optimizers.items():
            # float32 steps rounded in a different order by XLA: ~1e-6 apart after 3001 steps
            assert results["jax"][setting][optimizer]["final_x"] == pytest.approx(
                summary["final_x"], abs=1e-4)


def test_command_line_writes_results_table_and_figure(capsys, tmp_path):
    argv = ["synthetic", "--steps", "3000", "--no-progress", "--results-dir", str(tmp_path)]
    assert run_main(argv) == 0
    table = capsys.readouterr().out
    out = tmp_path / "synthetic"
    summary = json.loads((out / "summary.json").read_text())
    curves = json.loads((out / "trajectories.json").read_text())
    config = json.loads((out / "config.json").read_text())

    assert list(summary) == ["online", "stochastic"]
    for setting, by_optimizer in summary.items():
        assert list(by_optimizer) == ["adam", "amsgrad", "adamnc"]  # the default optimizers
        for optimizer, values in by_optimizer.items():
            assert set(values) == {"final_x", "avg_regret", "steps", "lr"}
            assert values["steps"] == 3000
            curve = curves[setting][optimizer]
            assert curve["step"][-1] == 3000
            assert curve["x"][-1] == pytest.approx(values["final_x"], rel=1e-6)
            assert curve["avg_regret"][-1] == pytest.approx(values["avg_regret"], rel=1e-6)
            row = "%-11s %-9s %8g %+10.5f" % (setting, optimizer, values["lr"], values["final_x"])
            assert row in table
        # Each at a rate its theory supports: ADAMNC's own step is lr / sqrt(t), and at
        # the others' 0.001 it stayed at x = 0.00 (drawn, "ADAMNC fails").
        assert [values["lr"] for values in by_optimizer.values()] == [0.001, 0.001, 1.0]
        assert abs(by_optimizer["adamnc"]["final_x"]) > 0.1  # moved (at 0.001: |x| < 0.005)
    assert config["lr"] is None and config["bias_correction"] is False
    assert config["lrs"] == {"adam": 0.001, "amsgrad": 0.001, "adamnc": 1.0}
    assert config["settings"]["stochastic"]["seed"] == 4711
    assert (out / "synthetic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "synthetic.pdf").read_bytes()[:5] == b"%PDF-"

    # another seed changes the stochastic draws only
    assert run_main(argv + ["--seed", "1"]) == 0
    reseeded = json.loads((out / "summary.json").read_text())
    assert reseeded["online"] == summary["online"]
    assert reseeded["stochastic"] != summary["stochastic"]


def test_command_line_runs_the_optimizers_named(capsys, tmp_path):
    argv = ["synthetic", "--steps", "300", "--no-progress", "--setting", "online",
            "--results-dir", str(tmp_path)]
    assert run_main(argv + ["--optimizer", "adamnc"]) == 0
    summary = json.loads((tmp_path / "synthetic" / "summary.json").read_text())
    assert list(summary["online"]) == ["adamnc"]
    capsys.readouterr()
    assert run_main(argv + ["--optimizer", "sgd"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "optimizer must be one of adam, amsgrad, adamnc" in error


def write_fake_results(directory, optimizers=("adam", "amsgrad"), lr=0.001):
    """The synthetic job's trajectories.json and config.json, one online curve per optimizer."""
    steps = [100, 200, 300]
    curve = {"step": steps, "x": [0.1, 0.5, 1.0], "loss": [0.0, 1.0, 2.0],
             "avg_regret": [0.3, 0.2, 0.2]}
    # Every other optimizer heads for the optimum, so the lines differ.
    (directory / "trajectories.json").write_text(json.dumps(
        {"online": {name: dict(curve, x=[(-1) ** index * x for x in curve["x"]])
                    for index, name in enumerate(optimizers)}}))
    (directory / "config.json").write_text(json.dumps(
        {"lr": lr, "lr_schedule": "constant", "bias_correction": False,
         "settings": {"online": {"beta1": 0.9, "beta2": 0.99, "optimum": -1.0}}}))


def test_plot_synthetic_writes_png_and_pdf_without_theano(tmp_path):
    write_fake_results(tmp_path)
    script = ("import json, sys; from plots.synthetic import plot_synthetic; "
              "paths = plot_synthetic(sys.argv[1], sys.argv[2]); "
              "assert 'theano' not in sys.modules, 'plots imported theano'; "
              "print(json.dumps(paths))")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(tmp_path / "fig")],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    paths = json.loads(result.stdout)
    assert [os.path.basename(p) for p in paths] == ["synthetic.png", "synthetic.pdf"]
    assert all(os.path.getsize(p) > 1000 for p in paths)


@pytest.mark.parametrize("optimizers, drawn", [
    (("adam", "amsgrad"), "Adam and AMSGrad on"),
    (("adamnc",), "ADAMNC on"),
    (("adam", "amsgrad", "adamnc"), "Adam, AMSGrad and ADAMNC on")])
def test_synthetic_figure_title_names_the_optimizers_drawn(tmp_path, monkeypatch, optimizers,
                                                          drawn):
    # It said "Adam vs AMSGrad" above a figure of ADAMNC alone.
    import plots.synthetic
    write_fake_results(tmp_path, optimizers, lr=1.0)
    figures = []
    monkeypatch.setattr(plots.synthetic, "save_figure",
                        lambda figure, *args, **kwargs: figures.append(figure))
    plots.synthetic.plot_synthetic(str(tmp_path), str(tmp_path / "fig"))
    title = " ".join(figures[0]._suptitle.get_text().split())  # wrapped to the figure
    assert title == drawn + " the synthetic problems of Reddi et al. (lr=1, constant, " \
                            "bias correction off)"


def test_synthetic_figure_title_fits_the_figure_with_every_variant(tmp_path, monkeypatch):
    # Six optimizers' names ran off both sides of the figure on one line.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    import plots.synthetic
    names = ("amsgrad", "amsgrad_pytorch", "amsgrad_optax", "amsgrad_reddi", "adam", "adamnc")
    write_fake_results(tmp_path, names, lr=1.0)
    figures = []
    monkeypatch.setattr(plots.synthetic, "save_figure",
                        lambda figure, *args, **kwargs: figures.append(figure))
    plots.synthetic.plot_synthetic(str(tmp_path), str(tmp_path / "fig"))
    figure = figures[0]
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    extent = figure._suptitle.get_window_extent(renderer)
    assert 0 <= extent.x0 and extent.x1 <= figure.bbox.x1
    assert "AMSGrad (Reddi et al.)" in " ".join(figure._suptitle.get_text().split())


def test_plot_synthetic_without_results_says_what_to_run(tmp_path):
    from plots.synthetic import plot_synthetic
    with pytest.raises(UserError, match="run.py synthetic"):
        plot_synthetic(str(tmp_path / "synthetic"), str(tmp_path))


@pytest.mark.slow
def test_default_job_end_to_end(tmp_path):
    """`python experiments/run.py synthetic`, the project's main job: 9e6 steps per run."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "run.py"),
                             "synthetic", "--no-progress", "--results-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=str(tmp_path))
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "synthetic" / "summary.json").read_text())
    assert summary["online"]["adam"]["final_x"] == 1.0
    assert summary["online"]["amsgrad"]["final_x"] < -0.99
    assert summary["stochastic"]["adam"]["final_x"] > 0.9
    assert summary["stochastic"]["amsgrad"]["final_x"] < -0.5
    assert all(run["steps"] == 9000000 for runs in summary.values() for run in runs.values())
    print("default synthetic job: %.1f s" % seconds)


def test_adamnc_on_the_problems_matches_its_projected_float64_reference():
    # Reddi et al.'s ADAMNC (amsgrad.adamnc's defaults: lambda = 0.999999), each step
    # projected onto [-1, 1] as the runner does.
    steps, lr, beta1, decay = 3001, 0.01, 0.9, 0.999999
    runs = [RunSpec(online_problem(), "adamnc"), RunSpec(stochastic_problem(), "adamnc")]
    trajectories = simulate(runs, steps, lr=lr, dtype="float64", record_points=steps,
                            progress=False, steps_per_call=4)
    for trajectory in trajectories:
        x = m = v = 0.0
        for t, g in enumerate(trajectory.run.problem.gradient_stream().take(steps), start=1):
            beta1_t, beta2_t = beta1 * decay ** (t - 1), 1 - 1 / t
            m = beta1_t * m + (1 - beta1_t) * g
            v = beta2_t * v + (1 - beta2_t) * g * g
            x = min(1.0, max(-1.0, x - lr / math.sqrt(t) * m / (math.sqrt(v) + 1e-8)))
        # float32 coefficients (t and lr in floatX) in a float64 state
        assert trajectory.final_x == pytest.approx(x, abs=1e-5)


def test_runs_at_their_own_rates_step_as_if_alone():
    # One compiled step for runs at different learning rates: each as if run by itself.
    together = simulate([RunSpec(online_problem(), "adam", lr=0.05),
                         RunSpec(online_problem(), "adamnc", lr=0.5)],
                        steps=203, steps_per_call=2, progress=False)
    alone = [simulate([RunSpec(online_problem(), name)], steps=203, lr=lr, steps_per_call=2,
                      progress=False)[0] for name, lr in (("adam", 0.05), ("adamnc", 0.5))]
    for mixed, single in zip(together, alone):
        assert mixed.final_x == single.final_x
        np.testing.assert_array_equal(mixed.x, single.x)


def test_command_line_lr_sets_every_rate(capsys, tmp_path):
    argv = ["synthetic", "--steps", "300", "--no-progress", "--setting", "online",
            "--optimizer", "adam", "adamnc", "--lr", "0.01", "--results-dir", str(tmp_path)]
    assert run_main(argv) == 0
    summary = json.loads((tmp_path / "synthetic" / "summary.json").read_text())
    assert [values["lr"] for values in summary["online"].values()] == [0.01, 0.01]
    config = json.loads((tmp_path / "synthetic" / "config.json").read_text())
    assert config["lr"] == 0.01 and config["lrs"] == {"adam": 0.01, "adamnc": 0.01}


def test_synthetic_figure_legend_gives_each_rate(tmp_path, monkeypatch):
    import plots.synthetic
    write_fake_results(tmp_path, ("adam", "adamnc"))
    config = json.loads((tmp_path / "config.json").read_text())
    config["lrs"] = {"adam": 0.001, "adamnc": 1.0}
    (tmp_path / "config.json").write_text(json.dumps(config))
    figures = []
    monkeypatch.setattr(plots.synthetic, "save_figure",
                        lambda figure, *args, **kwargs: figures.append(figure))
    plots.synthetic.plot_synthetic(str(tmp_path), str(tmp_path / "fig"))
    labels = [text.get_text() for text in figures[0].axes[1].get_legend().get_texts()]
    assert labels[:2] == ["Adam, lr 0.001", "ADAMNC, lr 1"]
    assert "(each at its lr, constant" in figures[0]._suptitle.get_text()
