"""The reproduce report in real headless Chromium: every image and animation loads, no console errors."""

import shutil
from pathlib import Path

import pytest

from stableresnet.experiments.claims import evaluate_claims
from stableresnet.experiments.reproduce import load_specs, run_reproduce
from stableresnet.experiments.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (pip install playwright)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); CI installs it")

# With the tiny data, propagation and sweep figures (conftest): one experiment of every kind.
EXTRA = """
[fig15]
title = "elec2 over time"
kind = "drift"
plot = "periods"
data = "elec2"
train_until = "12"
step_sizes = [0.1, 1.0]
quick = { trials = 1, depth = 2, width = 8, epochs = 1, batch_size = 2000 }

[beyond1]
title = "policies"
kind = "comparison"
datasets = ["wine"]
step_sizes = [0.5]
trials = 2
depth = 2
epochs = 1
variants = [{ name = "fixed", step_size_policy = "fixed" }, { name = "adaptive", step_size_policy = "adaptive" }]
"""

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def test_report_loads_every_image_without_console_errors(tiny_spec, tmp_path):
    out = tmp_path / "report"
    records = run_reproduce(load_specs("quick", tiny_spec(EXTRA)), out, "quick")
    report = build_report(out, records, evaluate_claims(records, out), "quick", "cpu")

    problems = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(Path(report).as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        screenshot = out / "screenshot.png"
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()

    sources = [src for src, _ in images]
    assert {"fig1/data.png", "fig2/grid-scaled.png", "fig2/propagation-scaled.gif", "fig9/sweep.png",
            "fig15/periods.png", "beyond1/comparison.png"} <= set(sources)
    assert [src for src, loaded in images if not loaded] == []
    assert problems == []
    assert screenshot.stat().st_size > 10_000
