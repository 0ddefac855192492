"""What every command shares: the typer app, the consoles, the user-error wrapper and shared option help.

User mistakes (a bad value, a broken file) are printed as one clear line on stderr
with exit status 2, never as a traceback.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import logging
import signal
import threading
import time

import numpy as np
import torch
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .. import __version__, compilation
from ..errors import USER_ERRORS, ConfigError, DataError
from ..data import load_dataset, load_table, paper_preset
from ..experiments.runner import RUNNING_UNIT
from ..spec import defaults, help_text
from ..train import TrainConfig

SPEC_DEFAULT = object()  # setting_option: the spec's default
app = typer.Typer(
    help="Residual networks as ODE solvers: explicit step size, shrinkage and batch-norm blocks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Help text is shown as written: rich markup would swallow the "[default notes]" in brackets.
    rich_markup_mode="markdown",
)
console = Console()
errors = Console(stderr=True)
STEP_SIZES_HELP = "h grid: start:stop:step (stop included) or a list 0.1,0.5,1"
# Options that several commands share, declared once.
DATA_OPTION = typer.Option(None, help="CSV or Parquet file with your data.")
TARGET_OPTION = typer.Option(None, help="Target column of --data.")
DATASET_OPTION = typer.Option(None, help="A bundled dataset (see `stableresnet datasets`).")
TEST_SIZE_OPTION = typer.Option(0.2, help="Test fraction where the data has no official split.")
ONE_HOT_OPTION = typer.Option(False, help="One-hot encode categorical columns.")
DEVICE_OPTION = typer.Option("cpu", help="cpu, cuda or auto.")
COMPILE_OPTION = typer.Option(
    None, "--compile/--no-compile", show_default=False,
    help="Force training through torch.compile (CUDA graphs on --device cuda; equal to the eager engine to "
         "round-off), or force eager. [default: each group where its projected eager time is several "
         "compilations long (a compilation takes a minute or more, seconds from a warm cache); the records "
         "and the progress line say which, and why]")


def workers_option(units: str, extra: str = ""):
    """``--workers``: how many of a run's ``units`` train at once (`experiments.runner.RunOptions.workers`)."""
    return typer.Option(None, show_default=False,
                        help=f"{units} trained at once on this machine, each on one torch thread, costliest first; "
                             f"the same numbers. [default: one per core this process may use{extra}]")


def compile_setting(compile: bool | None) -> bool | str:
    """``--compile`` (True), ``--no-compile`` (False) or neither ("auto": `compilation.choose`)."""
    return "auto" if compile is None else compile


def initial_signal_line(scale_ratios, gradient_norms) -> str:
    """One line on the networks before training: max |y| last / layer 0 and ‖∂L/∂y_0‖ on the first
    batch (``diagnostics.initial_signal``), with how many start collapsed or exploded."""
    from ..diagnostics import COLLAPSED_BELOW, EXPLODED_ABOVE, signal_state

    def spread(values):
        values = np.asarray(values, dtype=float)
        if len(values) == 1:
            return f"{values[0]:.3g}"
        return f"median {np.median(values):.3g} (range {values.min():.3g}–{values.max():.3g})"

    states = [signal_state(ratio) for ratio in scale_ratios]
    line = (f"at initialisation: max |y| last / layer 0 {spread(scale_ratios)}, gradient reaching the first block "
            f"‖∂L/∂y_0‖ {spread(gradient_norms)}")
    flagged = [f"{states.count(state)} of {len(states)} start {state} ({sign} {bound:g})"
               for state, sign, bound in (("collapsed", "<", COLLAPSED_BELOW), ("exploded", ">", EXPLODED_ABOVE))
               if state in states]
    return line + (f"; [yellow]{', '.join(flagged)}[/]" if flagged else "")


def _print_version(value: bool) -> None:
    if value:
        console.print(f"stableresnet {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
):
    """Residual networks as ODE solvers: explicit step size, shrinkage and batch-norm blocks."""


class StepLog:
    """One plain line per finished step, with the elapsed time, where stdout is not a terminal.

    Progress bars draw nothing into a log file, so a long command piped to one would stay
    silent for minutes; this writes ``[   12.3 s] done: <step>`` lines instead. Steps are
    announced as they start (``begin``); a step is done when the next begins or at ``end``.
    On a terminal the progress bars show the same and this prints nothing.
    """

    def __init__(self):
        self.started = time.monotonic()
        self.enabled = not console.is_terminal
        self.current: str | None = None
        self.engines: list[str] = []

    def begin(self, step: str) -> None:
        self.end()
        self.current = step
        self.engines = []  # the engine choice of each run the step trains (`engine_notes`)

    def engine_note(self) -> str:
        """The step's engine choice; for several runs, how many each engine trained, with the
        latest reason of each (e.g. " · 2× compiled (auto: …); 7× eager (auto: …)")."""
        if len(self.engines) <= 1:
            return "".join(f" · {reason}" for reason in self.engines)
        by_engine = collections.defaultdict(list)  # "compiled" or "eager": its runs' reasons, in order
        for reason in self.engines:
            by_engine[reason.split(" ")[0]].append(reason)
        return " · " + "; ".join(f"{len(reasons)}× {reasons[-1]}" for reasons in by_engine.values())

    def end(self, note: str | None = None) -> None:
        """Write the running step's line, with ``note`` if given, else the engines it gathered."""
        if self.enabled and self.current is not None:
            console.print(f"[{time.monotonic() - self.started:7.1f} s] done: {self.current}"
                          f"{self.engine_note() if note is None else note}", markup=False, highlight=False,
                          soft_wrap=True)
        self.current = None


def start_group(progress: Progress, task, steps: StepLog, label: str, *, reported_when_done: bool = False,
                note: str | None = None):
    """Show ``label`` as the group now training (progress bar and log line); returns its
    ``on_epoch(epoch, loss_per_member)`` callback. ``reported_when_done``: the caller learns of
    the group only once it has finished (workers, Ray), so its log line is written at once, with
    ``note`` (see `StepLog.end`)."""
    progress.update(task, completed=0, description=label)
    steps.begin(label)
    if reported_when_done:
        steps.end(note)

    def on_epoch(epoch, loss):
        progress.update(task, completed=epoch + 1,
                        loss=f"{np.nanmean(loss):.4f}" if np.isfinite(loss).any() else "nan")

    return on_epoch


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def user_errors(command):
    """Turn the package's user-facing errors into one red line and exit status 2, and a stop
    (Ctrl-C, or SIGTERM, which then unwinds like Ctrl-C: temporary files removed, time counted)
    into one line and exit status 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as error:
            # One line whatever the width (soft_wrap), and the message shown as written (escape).
            errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            errors.print("[bold yellow]stopped:[/] no file was left half-written; sweep, drift, reproduce and atlas "
                         "continue where they stopped when run again", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def check_data_source(data, target, dataset) -> None:
    """``--data FILE --target COLUMN`` or ``--dataset NAME``: exactly one source, and a file needs its target."""
    if (data is None) == (dataset is None):
        raise ConfigError("give exactly one of --data FILE (with --target COLUMN) or --dataset NAME")
    if data is not None and target is None:
        raise ConfigError("--data needs --target COLUMN naming the column to predict")
    if dataset is not None and target is not None:
        raise ConfigError(f"--target {target!r} applies to --data FILE; bundled dataset {dataset!r} has its own target")


def load_data_source(data, target, dataset, *, seed: int, test_size: float, one_hot: bool):
    """The split `Dataset` of ``--data``/``--target`` (a user table) or ``--dataset`` (a bundled set)."""
    check_data_source(data, target, dataset)
    if data is not None:
        return load_table(data, target, seed=seed, test_size=test_size, one_hot=one_hot)
    return load_dataset(dataset, seed=seed, test_size=test_size, one_hot=one_hot)


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when available; 'cuda' without a GPU is a user error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; expected cpu, cuda or auto")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but PyTorch sees no CUDA GPU here")
    return device


def parse_step_sizes(text: str) -> tuple[float, ...]:
    """'0.1:1.0:0.1' (start:stop:step, stop included) or '0.1,0.5,1' -> a tuple of floats."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            return tuple(round(start + i * step, 10) for i in range(count))
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"cannot read step sizes {text!r}; expected start:stop:step (e.g. 0.1:1.0:0.1) or a list (0.1,0.5,1)"
        ) from None


def renamed_option(value: str | None, old_value: str | None, name: str, old_name: str) -> str | None:
    """The text of option ``name``, or of its deprecated spelling ``old_name`` where that was given
    instead, with a one-line note on stderr to write ``name old_value``; both at once is a mistake."""
    if old_value is None:
        return value
    if value is not None:
        raise ConfigError(f"give {name} or its deprecated spelling {old_name}, not both")
    errors.print(f"note: {old_name} is deprecated; use {name} {old_value}", markup=False, highlight=False,
                 soft_wrap=True)
    return old_value


def preset_or_none(dataset: str | None):
    """The paper's preset of a bundled dataset, or None for one the paper did not use (elec2) or a user file (None)."""
    if dataset is None:
        return None
    try:
        return paper_preset(dataset)
    except DataError:
        return None


def setting_option(name: str, *flags: str, default=SPEC_DEFAULT, note: str | None = None):
    """The option of a spec setting (``stableresnet.spec``): its help as the spec declares it, then
    ``note`` in brackets; its default the spec's unless ``default`` is given."""
    value = defaults([name])[name] if default is SPEC_DEFAULT else default
    text = f"{help_text(name).rstrip('.')} [{note}]." if note else help_text(name)
    return typer.Option(value, *flags, help=text)


def preset_setting_option(name: str, *flags: str):
    """The option of a spec setting that follows the paper preset, else the estimator's default (the
    spec's); None until the command resolves it (``preset_or_estimator``)."""
    value = defaults([name])[name]
    fallback = "the number of features" if value is None else f"{value:g}"
    paper = f"paper preset: {TrainConfig.learning_rate:g}" if name == "learning_rate" else "paper preset"
    return setting_option(name, *flags, default=None, note=f"{paper}, else the estimator's: {fallback}")


def preset_or_estimator(preset, **given) -> dict:
    """Each given setting (depth, width, epochs, batch_size, learning_rate; None where not given): the value
    given, else the paper preset's, else the estimator's default (the spec's). The paper gives no learning
    rate: with a preset it is TrainConfig's 1e-3, Keras' default."""
    estimator = defaults()

    def fallback(name):
        if preset is None:
            return estimator[name]
        return TrainConfig.learning_rate if name == "learning_rate" else getattr(preset, name)

    return {name: value if value is not None else fallback(name) for name, value in given.items()}


# Network and training settings that follow the paper preset, else the estimator (see preset_or_estimator).
DEPTH_OPTION = preset_setting_option("depth")
WIDTH_OPTION = preset_setting_option("width")
EPOCHS_OPTION = preset_setting_option("epochs")
BATCH_SIZE_OPTION = preset_setting_option("batch_size")
LEARNING_RATE_OPTION = preset_setting_option("learning_rate", "--lr")
# Settings with the spec's default everywhere.
ACTIVATION_OPTION = setting_option("activation")
OPTIMIZER_OPTION = setting_option("optimizer")
INTEGRATOR_OPTION = setting_option("integrator")
POLICY_OPTION = setting_option("step_size_policy")
LEVELS_OPTION = setting_option("levels")
SMOOTHNESS_OPTION = setting_option("smoothness")
INIT_OPTION = setting_option("init", "--init")


def beyond_label(integrator: str, step_size_policy: str, levels: int) -> str:
    """", rk4, adaptive h, 2 levels": the settings that differ from the paper's, for titles."""
    extras = [integrator] if integrator != "euler" else []
    extras += [f"{step_size_policy} h"] if step_size_policy != "fixed" else []
    extras += [f"{levels} levels"] if levels > 1 else []
    return "".join(f", {item}" for item in extras)


def epoch_progress(total: int, description: str, *columns: TextColumn) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        *columns,
        console=console,
        transient=True,
    )


class _EngineNote(logging.Handler):
    """Shows each training run's engine choice (`compilation.choose`, logged as it is made) in a
    progress task's ``engine`` field and in the running step's log line; ``by_unit`` keeps the
    choice of each unit a worker thread trains (`runner.RUNNING_UNIT`), by unit name."""

    def __init__(self, progress: Progress, task, steps: StepLog):
        super().__init__(logging.INFO)
        self.progress, self.task, self.steps = progress, task, steps
        self.by_unit: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        reason = record.getMessage()
        self.progress.update(self.task, engine=reason)
        self.steps.engines.append(reason)
        unit = RUNNING_UNIT.get()
        if unit is not None:
            self.by_unit[unit.name] = f" · {reason}"


@contextlib.contextmanager
def engine_notes(progress: Progress, task, steps: StepLog):
    """While open, each training run's engine choice and its reason show on ``task`` and ``steps``;
    yields the handler (its ``by_unit``: the choices of units trained by worker threads)."""
    note = _EngineNote(progress, task, steps)
    compilation.logger.addHandler(note)
    compilation.logger.setLevel(logging.INFO)
    try:
        yield note
    finally:
        compilation.logger.removeHandler(note)


@contextlib.contextmanager
def unit_progress(options, noun: str):
    """A progress bar and, off a terminal, one log line per finished unit, for any experiment the
    runner executes: yields ``options`` (`experiments.runner.RunOptions`) with their ``progress``
    set; units show as "<noun> <index>/<total> <unit label>", with the engine that trains them
    (the progress bar, with workers: the latest unit's; a log line: its own unit's, but for Ray's,
    chosen in other processes)."""
    with epoch_progress(1, noun, TextColumn("{task.fields[engine]}")) as progress:
        task = progress.add_task(noun, total=1, loss="-", engine="")
        steps = StepLog()
        with engine_notes(progress, task, steps) as notes:
            def on_unit(unit, index, total):
                progress.update(task, total=unit.epochs)
                return start_group(progress, task, steps, f"{noun} {index + 1}/{total} {unit.label}",
                                   reported_when_done=options.reports_when_done,
                                   note=notes.by_unit.pop(unit.name, ""))

            yield dataclasses.replace(options, progress=on_unit)
        steps.end()
