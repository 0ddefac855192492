"""What every command shares: readable help, --version, log lines off a terminal, output paths checked first."""

import os
import re

import pytest
import typer
from typer.testing import CliRunner

from stableresnet import __version__
from stableresnet.cli import app
from stableresnet.files import check_output_file, check_output_folder
from stableresnet.model import ConfigError

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands.items())


def run(*args):
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})
    return result, result.stdout + (result.stderr or "")


def test_every_command_is_covered_here():
    names = {name for name, _ in COMMANDS}
    assert {"train", "sweep", "plot-sweep", "reproduce", "diagnose", "propagate", "drift", "datasets"} <= names


@pytest.mark.parametrize("name, command", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_help_shows_every_bracketed_note_of_every_option(name, command):
    result, out = run(name, "--help")
    assert result.exit_code == 0, out
    shown = " ".join(out.replace("│", " ").split())
    notes = [note for param in command.params for note in re.findall(r"\[[^\]]+\]", param.help or "")]
    for note in notes:
        assert " ".join(note.split()) in shown, f"{name} --help lost {note!r}"
    if name == "train":  # the case the issue names
        assert "Residual blocks [paper preset" in shown


def test_version_prints_the_package_version():
    result, out = run("--version")
    assert result.exit_code == 0
    assert out.strip() == f"stableresnet {__version__}"


def test_a_long_command_logs_one_line_per_finished_step_off_a_terminal(tmp_path):
    # CliRunner's stdout is not a terminal, as with `stableresnet reproduce > log`.
    result, out = run("drift", "--data", "elec2", "--train-until", 12, "--depth", 2, "--epochs", 1,
                      "--batch-size", 2000, "--trials", 1, "--blocks", "plain,shrinkage", "--step-sizes", "1",
                      "--workers", 1, "--out", tmp_path / "drift")
    assert result.exit_code == 0, out
    lines = re.findall(r"^\[\s*(\d+\.\d) s\] done: (.*)$", out, flags=re.MULTILINE)
    # Each with the engine that trained it, and why: one epoch of a few batches is far too short to compile.
    assert [step.split(" · ")[0] for _, step in lines] == ["block 1/2 plain", "block 2/2 shrinkage"]
    assert all(re.fullmatch(r"eager \(auto: \d+ steps ≈ 0 s eager ≤ 4 × \d+ s to compile from a cold cache\)",
                            step.split(" · ")[1]) for _, step in lines)
    assert float(lines[0][0]) <= float(lines[1][0])


def test_user_errors_stay_on_one_line_and_keep_brackets(tmp_path):
    result, out = run("train", "--dataset", "wine", "--block", "[bold]nope" + "x" * 200)
    assert result.exit_code == 2
    error_lines = [line for line in out.splitlines() if line.strip()]
    assert len(error_lines) == 1 and "'[bold]nope" in error_lines[0]


@pytest.mark.parametrize("args", [
    ("train", "--dataset", "wine", "--save", "{folder}"),
    ("train", "--dataset", "wine", "--save", "{folder}/missing/model.safetensors"),
    ("propagate", "--out", "{file}"),
    ("propagate", "--out", "{file}/sub"),
    ("drift", "--data", "elec2", "--train-until", "12", "--out", "{file}"),
    ("reproduce", "--only", "fig1", "--out", "{file}"),
    ("diagnose", "--dataset", "wine", "--out", "{file}"),
    ("sweep", "--dataset", "wine", "--out", "{file}/sub"),
    ("tune", "--dataset", "wine", "--save", "{folder}"),
    ("tune", "--dataset", "wine", "--out", "{file}"),
    ("predict", "--model", "{file}", "--data", "{file}", "--out", "{folder}"),
])
def test_an_unwritable_output_is_refused_before_any_work(tmp_path, args):
    file = tmp_path / "a-file"
    file.write_text("keep me")
    before = sorted(os.listdir(tmp_path))
    result, out = run(*(a.format(folder=tmp_path, file=file) for a in args))
    assert result.exit_code == 2, out
    assert out.startswith("error: ") and out.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == before and file.read_text() == "keep me"


def test_output_checks_accept_what_can_be_written(tmp_path):
    assert check_output_file(tmp_path / "model.safetensors", "--save") == tmp_path / "model.safetensors"
    assert check_output_folder(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert check_output_folder(tmp_path, "--out") == tmp_path
    with pytest.raises(ConfigError, match="--save .* is a folder"):
        check_output_file(tmp_path, "--save")


def test_a_step_that_trains_several_runs_logs_how_many_each_engine_trained_with_its_latest_reason():
    # A reproduce figure trains several runs (a comparison's data sets and variants); before, its line
    # showed only the last run's choice.
    from rich.progress import Progress

    from stableresnet import compilation
    from stableresnet.cli.common import StepLog, console, engine_notes

    steps = StepLog()
    steps.enabled = True
    with console.capture() as captured, Progress(console=console) as progress:
        task = progress.add_task("figure", engine="")
        with engine_notes(progress, task, steps):
            steps.begin("fig9")
            for reason in ("eager (auto: a)", "compiled (auto: b)", "eager (auto: c)"):
                compilation.logger.info("%s", reason)
            steps.begin("fig10")
            compilation.logger.info("%s", "eager (forced)")
            steps.begin("fig11")
        steps.end()
    lines = [line.split("] done: ")[1] for line in captured.get().splitlines() if "] done: " in line]
    assert lines == ["fig9 · 2× eager (auto: c); 1× compiled (auto: b)", "fig10 · eager (forced)", "fig11"]
