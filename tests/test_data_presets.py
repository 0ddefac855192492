"""Paper presets are the paper's numbers, checked on load; the Figure 1 plot."""

import subprocess
import sys

import pytest
from matplotlib.figure import Figure

from stableresnet.data import PAPER_PRESETS, DataError, load_dataset, paper_preset
from stableresnet.viz.data import plot_synthetic
from stableresnet.data.presets import read_presets

H_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PAPER = {  # epochs, blocks, width, batch size: Zhang & Wynter (2018), section "Experiments with the UCI repository"
    "wine": (50, 20, 13, 10),
    "abalone": (50, 50, 8, 50),
    "absenteeism": (20, 100, 19, 10),
    "autism": (30, 100, 20, 10),
    "adult": (50, 100, 14, 100),
    "synthetic": (100, 100, 2, 32),
}


@pytest.mark.parametrize("name", PAPER)
def test_presets_are_the_papers_numbers(name):
    preset = paper_preset(name)
    assert (preset.epochs, preset.depth, preset.width, preset.batch_size) == PAPER[name]
    assert preset.step_sizes == H_GRID and preset.trials == 10
    assert preset.deep_depth == (500 if name == "synthetic" else None)


def test_presets_cover_the_datasets_and_widths_match():
    assert set(PAPER_PRESETS) == set(PAPER)
    for name in ("circles", "moons", "spirals", "xor"):
        assert paper_preset(name) is PAPER_PRESETS["synthetic"]
    for name in ("wine", "abalone", "absenteeism", "autism", "circles"):
        assert paper_preset(name).width == load_dataset(name).n_features
    with pytest.raises(DataError, match="no paper preset for 'mnist'"):
        paper_preset("mnist")


GOOD = "epochs = 5\ndepth = 3\nwidth = 2\nbatch_size = 4\nstep_sizes = [0.5, 1]\ntrials = 2\n"


@pytest.mark.parametrize("text, message", [
    (GOOD + "learning_rate = 0.1\n", r"unknown keys \['learning_rate'\]"),
    (GOOD.replace("trials = 2\n", ""), r"lacks keys \['trials'\]"),
    (GOOD.replace("depth = 3", 'depth = "3"'), "depth must be a positive integer"),
    (GOOD.replace("epochs = 5", "epochs = true"), "epochs must be a positive integer"),
    (GOOD.replace("[0.5, 1]", "[0.5, -1]"), "step_sizes must be a non-empty list of positive numbers"),
    (GOOD + "datasets = 'toy'\n", "datasets must be a list of names"),
    ("[toy\n", "cannot read presets"),
])
def test_bad_presets_file_is_rejected(tmp_path, text, message):
    path = tmp_path / "presets.toml"
    path.write_text("[toy]\n" + text if not text.startswith("[") else text)
    with pytest.raises(DataError, match=message):
        read_presets(path)


def test_good_presets_file(tmp_path):
    path = tmp_path / "presets.toml"
    path.write_text("[toy]\n" + GOOD)
    assert read_presets(path)["toy"].step_sizes == (0.5, 1.0)


def test_plot_synthetic_draws_train_and_test(tmp_path):
    figure = plot_synthetic(load_dataset("circles", seed=0, n_samples=100))
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert [ax.get_title() for ax in figure.axes] == ["circles: training data (n = 100)", "circles: test data (n = 100)"]
    figure.savefig(tmp_path / "figure1.png")
    assert (tmp_path / "figure1.png").stat().st_size > 0
    with pytest.raises(DataError, match="needs 2 features"):
        plot_synthetic(load_dataset("wine"))


def test_plot_synthetic_into_given_axes():
    figure = Figure()
    axes = figure.subplots(1, 2)
    assert plot_synthetic(load_dataset("moons", n_samples=50), ax=axes) is figure


def test_importing_data_does_not_import_matplotlib():
    code = "import sys, stableresnet.data; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
