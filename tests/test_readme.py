"""The README stays a true user's page: short, every command it shows parses, its Python runs, and the
verdict counts it quotes are those of the kept runs' tables (docs/results/*/claims.csv)."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from stableresnet.cli import app
from stableresnet.experiments.claims import verdict_counts

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_a_short_page():
    assert len(README.splitlines()) <= 200


def commands() -> list[list[str]]:
    """Every `stableresnet ...` line of the README, as arguments, comments and `&&` tails dropped."""
    lines = []
    for line in README.splitlines():
        line = line.strip().split("  #")[0].split(" && ")[0]
        match = re.match(r"^(?:\.venv/bin/)?stableresnet (.+)$", line)
        if match:
            lines.append(match.group(1).split())
    return lines


def test_the_readme_shows_every_command_and_each_parses():
    shown = commands()
    assert {args[0] for args in shown if not args[0].startswith("-")} >= {
        "datasets", "train", "tune", "predict", "diagnose", "sweep", "plot-sweep", "propagate", "drift", "atlas",
        "reproduce"}
    runner = CliRunner()
    for args in shown:
        # With --help appended, click still rejects an unknown command or option, and runs nothing.
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, f"stableresnet {' '.join(args)}: {result.output}"


def test_the_readme_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"^\s*make ([a-z-]+)", README, flags=re.MULTILINE)):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), f"make {target}"


@pytest.mark.parametrize("run", ["quick", "paper"])
def test_the_readme_quotes_the_kept_runs_verdict_counts(run):
    claims = pd.read_csv(ROOT / "docs" / "results" / run / "claims.csv")
    quoted = f'docs/results/{run}/`) printed "{verdict_counts(claims)}"'
    assert quoted in " ".join(README.split()), f"README should quote {verdict_counts(claims)!r} for {run}"


def test_the_readme_python_example_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", README, flags=re.DOTALL).group(1)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout and (tmp_path / "wine.safetensors").exists()
