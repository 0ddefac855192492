"""Layer-by-layer propagation (paper Figs. 2-7): records, pictures, animations and the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest

import torch
from PIL import Image
from typer.testing import CliRunner

from stableresnet import StableResNet, TrainConfig, evaluate, fit
from stableresnet.cli import app
from stableresnet.data import load_dataset
from stableresnet.files import write_atomically
from stableresnet.experiments.propagation import (
    FIGURE_PRESETS,
    PropagationConfig,
    default_layers,
    load_record,
    propagate,
    run_propagation,
    write_records,
)
from stableresnet.model import ConfigError
from stableresnet.viz.propagation import (
    plot_feature_scale,
    plot_layer_accuracy,
    plot_propagation_grid,
    write_propagation_figures,
)

runner = CliRunner()


def tensors(n_samples=40, seed=0):
    data = load_dataset("circles", seed, n_samples=n_samples)
    return (torch.tensor(data.X_train, dtype=torch.float32), torch.tensor(data.y_train),
            torch.tensor(data.X_test, dtype=torch.float32), torch.tensor(data.y_test))


@pytest.fixture(scope="module")
def trained():
    """A tiny trained network and its record: depth 4, 40 + 40 points, 5 epochs."""
    X_train, y_train, X_test, y_test = tensors()
    model = StableResNet(2, 2, depth=4, block="plain", step_size=0.5, seed=0)
    fit(model, X_train, y_train, TrainConfig(epochs=5, batch_size=8, learning_rate=0.01))
    return model, (X_train, y_train, X_test, y_test), propagate(model, X_train, y_train, X_test, y_test)


@pytest.fixture(scope="module")
def overflowing():
    """An untrained plain network with h = 1e6: its features pass float32's range within ~15 layers."""
    X_train, y_train, X_test, y_test = tensors()
    model = StableResNet(2, 2, depth=20, block="plain", step_size=1e6, seed=0)
    return propagate(model, X_train, y_train, X_test, y_test)


def test_default_layers_are_the_papers():
    assert default_layers(100) == [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert default_layers(500) == [0, 5, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500]
    assert default_layers(3) == [0, 1, 2, 3]
    for depth in (1, 7, 33, 250, 1000):
        layers = default_layers(depth)
        assert layers[0] == 0 and layers[-1] == depth and len(layers) <= 12


def test_figure_presets_are_the_papers_six_pictures():
    table = {n: (p.block, p.step_size, p.depth) for n, p in FIGURE_PRESETS.items()}
    assert table == {2: ("plain", 1.0, 100), 3: ("plain", 0.1, 500), 4: ("shrinkage", 1.0, 100),
                     5: ("shrinkage", 0.1, 500), 6: ("batchnorm", 1.0, 100), 7: ("batchnorm", 0.1, 500)}


def test_grid_panels_show_exactly_the_models_trajectory(trained):
    model, (_, _, X_test, y_test), record = trained
    with torch.no_grad():
        _, trajectory = model(X_test, return_trajectory=True)
    layers = [0, 2, 4]
    for mode in ("scaled", "fixed"):
        figure = plot_propagation_grid(record.trajectory, record.labels, layers, record.head_accuracy, mode)
        assert len(figure.axes) == len(layers)
        for ax, layer in zip(figure.axes, layers):
            assert ax.get_title().startswith(f"layer {layer} ")
            assert f"{record.head_accuracy[layer]:.2f}" in ax.get_title()
            for k, collection in enumerate(ax.collections):
                expected = trajectory[layer][y_test == k].numpy()
                np.testing.assert_array_equal(collection.get_offsets(), expected)


def test_head_accuracy_at_the_last_layer_is_the_test_accuracy(trained):
    model, (_, _, X_test, y_test), record = trained
    assert record.trajectory.shape == (5, len(y_test), 2)
    assert record.head_accuracy[-1] == pytest.approx(evaluate(model, X_test, y_test)["accuracy"][0], abs=1e-6)
    assert record.head_accuracy[-1] == pytest.approx(record.test_accuracy, abs=1e-6)
    assert np.all((record.probe_accuracy >= 0) & (record.probe_accuracy <= 1))
    assert np.isnan(record.mean_step_norm[0])
    steps = np.linalg.norm(record.trajectory[1:] - record.trajectory[:-1], axis=2).mean(axis=1)
    np.testing.assert_allclose(record.mean_step_norm[1:], steps)
    np.testing.assert_allclose(record.max_abs_feature, np.abs(record.trajectory).max(axis=(1, 2)))
    assert record.first_nonfinite_layer == -1


def test_probe_sees_separable_layers():
    # Layer 0 of a linearly separable set: the probe must find it even if the untrained head does not.
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(60, 2)), dtype=torch.float32)
    y = (X[:, 0] > 0).long()
    record = propagate(StableResNet(2, 2, depth=2, step_size=0.1, seed=1), X, y, X, y)
    assert record.probe_accuracy[0] >= 0.95


def test_non_finite_features_are_drawn_up_to_the_last_finite_layer(overflowing, tmp_path):
    k = overflowing.first_nonfinite_layer
    assert 0 < k < 20 and not np.isfinite(overflowing.trajectory[k]).all()
    layers = [0, k - 1, k, 20]
    for mode in ("scaled", "fixed"):
        figure = plot_propagation_grid(overflowing.trajectory, overflowing.labels, layers,
                                       overflowing.head_accuracy, mode, k)
        marked = [any(f"from layer {k}" in text.get_text() for text in ax.texts) for ax in figure.axes]
        drawn = [len(ax.collections) > 0 for ax in figure.axes]
        assert marked == [False, False, True, True] and drawn == [True, True, False, False]
        figure.savefig(tmp_path / f"grid-{mode}.png")  # rendering with huge finite values must not fail
    plot_feature_scale(overflowing.max_abs_feature, overflowing.mean_step_norm,
                       first_nonfinite_layer=k).savefig(tmp_path / "scale.png")
    plot_layer_accuracy(overflowing.head_accuracy, overflowing.probe_accuracy,
                        first_nonfinite_layer=k).savefig(tmp_path / "accuracy.png")
    assert np.isnan(overflowing.probe_accuracy[k:]).all()


def test_written_files_and_one_gif_frame_per_layer(overflowing, tmp_path):
    written = write_propagation_figures(overflowing, tmp_path, layers=[0, 5, 20], axes_modes=("fixed",))
    written += write_records(overflowing, tmp_path)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(path.name for path in written)  # no temporary file left behind
    assert {"grid-fixed.png", "grid-fixed.svg", "layer-accuracy.png", "feature-scale.svg",
            "propagation-fixed.gif", "layers.csv", "propagation.npz", "config.json"} <= set(names)
    with Image.open(tmp_path / "propagation-fixed.gif") as gif:
        assert gif.n_frames == overflowing.depth + 1
    back = load_record(tmp_path / "propagation.npz")
    np.testing.assert_array_equal(back.trajectory, overflowing.trajectory)
    assert back.first_nonfinite_layer == overflowing.first_nonfinite_layer
    rows = (tmp_path / "layers.csv").read_text().splitlines()
    assert rows[0] == "layer,head_accuracy,probe_accuracy,max_abs_feature,mean_step_norm"
    assert len(rows) == overflowing.depth + 2


def test_an_interrupted_write_leaves_nothing(tmp_path):
    def broken(path):
        path.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "figure.png", broken)
    assert list(tmp_path.iterdir()) == []


def test_run_is_deterministic_from_the_seed():
    config = PropagationConfig(depth=3, n_samples=30, epochs=2, batch_size=8)
    first, second = run_propagation(config), run_propagation(config)
    np.testing.assert_array_equal(first.trajectory, second.trajectory)
    np.testing.assert_array_equal(first.probe_accuracy, second.probe_accuracy)
    assert first.config["depth"] == 3


def test_model_side_does_not_import_matplotlib():
    code = "import sys, stableresnet.experiments.propagation; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_cli_writes_the_expected_files_and_options_override_the_preset(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["propagate", "--figure", "5", "--depth", "3", "--epochs", "1", "--n-samples", "30",
                                 "--axes", "scaled", "--layers", "0,3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {path.name for path in out.iterdir()}
    assert names == {"grid-scaled.png", "grid-scaled.svg", "layer-accuracy.png", "layer-accuracy.svg",
                     "feature-scale.png", "feature-scale.svg", "propagation-scaled.gif", "layers.csv",
                     "propagation.npz", "config.json"} | ({"propagation-scaled.mp4"} & names)
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["block"], config["step_size"], config["depth"]) == ("shrinkage", 0.1, 3)
    with Image.open(out / "propagation-scaled.gif") as gif:
        assert gif.n_frames == 4


def test_cli_propagates_a_multilevel_rk4_network(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["propagate", "--depth", "8", "--levels", "2", "--integrator", "rk4", "-h", "0.2",
                                 "--epochs", "1", "--n-samples", "30", "--axes", "scaled", "--frames", "3",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "rk4, 2 levels" in " ".join(result.output.split())
    record = load_record(out / "propagation.npz")
    assert record.depth == 8 and (record.config["integrator"], record.config["levels"]) == ("rk4", 2)
    with Image.open(out / "propagation-scaled.gif") as gif:
        assert gif.n_frames == 3  # layers 0, 4 and 8


@pytest.mark.parametrize(
    "args, message",
    [
        (["--figure", "9"], "unknown figure 9"),
        (["--depth", "6", "--levels", "3"], "depth 6 cannot be built in 3 levels"),
        (["--integrator", "leapfrog"], "needs a two-stream block"),
        (["--frames", "1"], "at least 2 frames"),
        (["--depth", "5", "--layers", "0,7"], "layer 7 is beyond the depth 5"),
        (["--depth", "5", "--layers=-1,2"], "layer -1 is negative"),
        (["--depth", "5", "--layers", "0,x"], "comma-separated integers"),
        (["--axes", "diagonal"], "unknown axes mode 'diagonal'"),
        (["--block", "dense"], "unknown block 'dense'"),
        (["--data", "wine", "--epochs", "1"], "need 2-D synthetic data"),
        (["--data", "nope"], "unknown dataset 'nope'"),
    ],
)
def test_cli_rejects_bad_input_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["propagate", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert message in " ".join((result.stdout + (result.stderr or "")).split())
    assert not out.exists()


def test_bad_layers_in_the_python_api():
    with pytest.raises(ConfigError, match="beyond the depth"):
        plot_propagation_grid(np.zeros((3, 4, 2)), np.array([0, 1, 0, 1]), layers=[0, 3])


@pytest.fixture(scope="module")
def figure_3():
    """Paper Fig. 3 at full size: plain ResNet, h = 0.1, 500 layers, 100 epochs (~2-4 min on 2 CPUs)."""
    return run_propagation(PropagationConfig(block="plain", step_size=0.1, depth=500))


@pytest.mark.slow
def test_figure_3_small_step_keeps_500_layers_bounded_and_accurate(figure_3):
    # What this engine reproduces (seed 0): no divergence, bounded features, ~0.98 test accuracy,
    # and a linear probe that separates the classes well by layer 250.
    assert figure_3.first_nonfinite_layer == -1 and not figure_3.diverged
    assert figure_3.max_abs_feature.max() < 100
    assert figure_3.test_accuracy >= 0.95
    assert figure_3.probe_accuracy[:251].max() >= 0.9


@pytest.mark.slow
@pytest.mark.xfail(reason="seed 0 measured: the trained head first reaches 0.98 at layer 454, not before 200-250",
                   strict=False)
def test_figure_3_paper_claim_full_accuracy_before_layer_250(figure_3):
    """Paper: 'accuracy reaches 1.0 before layer 200' (checked loosely: head >= 0.98 by layer 250)."""
    assert figure_3.head_accuracy[:251].max() >= 0.98
