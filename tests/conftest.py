"""Shared fixtures."""

import pytest


@pytest.fixture(autouse=True)
def cold_compile_cache(tmp_path_factory, monkeypatch):
    """Compiled graphs go to a folder of the test's own (returned): ``compile="auto"`` chooses by what is
    cached, so each test sees a cold cache whatever the user's or another test's holds, and leaves nothing in it."""
    folder = tmp_path_factory.mktemp("compile-cache")
    monkeypatch.setenv("STABLERESNET_CACHE_DIR", str(folder))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    return folder


# One tiny experiment of the data, propagation and sweep kinds; the title checks HTML escaping.
TINY_FIGURES = """
[fig1]
title = "data"
kind = "data"
dataset = "circles"
n_samples = 60

[fig2]
title = "plain h = 1 <script>alert(1)</script>"
kind = "propagation"
figure = 2
quick = { depth = 4, epochs = 2, n_samples = 60, seeds = 2 }

[fig9]
title = "wine"
kind = "sweep"
dataset = "wine"
quick = { trials = 2, step_sizes = [0.1, 1.0], depth = 2, epochs = 2, blocks = ["plain", "batchnorm"] }
"""


@pytest.fixture
def tiny_spec(tmp_path):
    """``tiny_spec(extra="")`` writes the tiny figures plus ``extra`` TOML to a spec file and returns its path."""

    def write(extra: str = ""):
        path = tmp_path / "spec.toml"
        path.write_text(TINY_FIGURES + extra)
        return path

    return write
