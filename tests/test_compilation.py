"""``compile="auto"``: a fixed rule on the run's work and the cache's state, never on a clock; the cache folder."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from stableresnet import StableResNet, TrainConfig, fit
from stableresnet import compilation
from stableresnet.compilation import (COLD_SECONDS_PER_LAYER, EAGER_SECONDS_PER_LAYER_STEP, EAGER_SECONDS_PER_ROW,
                                      PAYS_AT, WARM_SECONDS_PER_LAYER, choose, shape_key)

CPU = torch.device("cpu")


@pytest.fixture
def cache(cold_compile_cache):
    """This test's own, empty cache folder (conftest)."""
    return cold_compile_cache


def steps_at(model, batch_size, seconds_per_layer):
    """The eager steps whose projection equals PAYS_AT compilations of seconds_per_layer per block (by hand)."""
    per_step = model.depth * (EAGER_SECONDS_PER_LAYER_STEP + model.n_members * batch_size * EAGER_SECONDS_PER_ROW)
    return PAYS_AT * model.depth * seconds_per_layer / per_step


def test_the_cache_folder_is_the_users_or_the_override_and_one_per_torch_version(cache, monkeypatch, tmp_path):
    assert compilation.cache_folder() == cache / f"torch-{torch.__version__}"
    monkeypatch.delenv("STABLERESNET_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert compilation.cache_folder() == tmp_path / "xdg" / "stableresnet" / f"torch-{torch.__version__}"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # TorchInductor's own setting wins
    assert compilation.cache_folder() == tmp_path / "inductor"


def test_auto_compiles_exactly_where_the_projected_eager_time_passes_the_threshold(cache):
    model = StableResNet(13, 3, depth=20, width=13, seed=list(range(100)))
    # 100 members of Wine's depth and batch: 4 × 20 × 2.2 s / (20 × (0.6 ms + 100 · 10 · 0.11 µs)) = 176 s / 14.2 ms;
    # Wine's paper sweep trains 50 epochs of 15 batches, 750 steps a group: eager on a cold cache.
    cold = steps_at(model, 10, COLD_SECONDS_PER_LAYER)
    assert round(cold) == 12_394
    assert not choose("auto", model, int(cold) - 1, 10, CPU).compile
    assert choose("auto", model, int(cold) + 1, 10, CPU).compile
    # A warm cache makes compiling cheap: fewer steps pay for it, and the reason says why.
    warm = steps_at(model, 10, WARM_SECONDS_PER_LAYER)
    assert warm < cold / 10
    below = choose("auto", model, int(warm) + 1, 10, CPU)
    assert not below.compile and "cold cache" in below.reason and below.reason.startswith("eager (auto:")
    compilation.remember(shape_key(model, 10, CPU), 42.0)
    above = choose("auto", model, int(warm) + 1, 10, CPU)
    assert above.compile and "warm cache" in above.reason
    assert not choose("auto", model, int(warm) - 1, 10, CPU).compile
    # Forced either way whatever the work; another batch size is another shape (cold).
    assert choose(True, model, 1, 10, CPU) == compilation.Choice(True, "compiled (forced)")
    assert not choose(False, model, 10**9, 10, CPU).compile
    assert not choose("auto", model, int(warm) + 1, 32, CPU).compile


def test_the_shape_key_ignores_values_and_seeds_but_not_shapes():
    def key(**kwargs):
        settings = {"depth": 3, "width": 4, "seed": [1, 2], "step_size": [0.1, 0.2], **kwargs}
        return shape_key(StableResNet(2, 2, **settings), 16, CPU)

    assert key() == key(seed=[5, 6], step_size=[1.0, 0.5])
    assert len({key(), key(depth=4), key(width=5), key(block="batchnorm"), key(seed=[1, 2, 3], step_size=0.1)}) == 5


def test_a_shape_compiled_by_another_version_of_the_engine_projects_a_cold_cache(cache, monkeypatch, tmp_path):
    # The engine's modules as a package of its own, so that one can be edited as a new version would.
    package = tmp_path / "engine"
    package.mkdir()
    names = [name.rsplit(".", 1)[1] for name in compilation.ENGINE_MODULES]
    for name in ("__init__", *names):
        (package / f"{name}.py").write_text(f"# {name}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(compilation, "ENGINE_MODULES", tuple(f"engine.{name}" for name in names))
    compilation.engine_fingerprint.cache_clear()
    try:
        model = StableResNet(13, 3, depth=20, width=13, seed=list(range(100)))
        steps = int(steps_at(model, 10, WARM_SECONDS_PER_LAYER)) + 1
        compilation.remember(shape_key(model, 10, CPU), 42.0)
        assert "warm cache" in choose("auto", model, steps, 10, CPU).reason
        (package / "blocks.py").write_text("# blocks, changed\n")
        compilation.engine_fingerprint.cache_clear()
        assert "cold cache" in choose("auto", model, steps, 10, CPU).reason
    finally:
        monkeypatch.undo()
        compilation.engine_fingerprint.cache_clear()  # the real engine's digest for the tests after this one


def test_auto_on_a_short_run_trains_eagerly_to_the_bit_and_says_so(cache):
    X, y = make_moons(n_samples=120, noise=0.1, random_state=0)
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y)

    def run(compile):
        model = StableResNet(2, 2, depth=3, width=4, block="batchnorm", step_size=[0.1, 1.0], seed=[1, 2])
        return model, fit(model, X, y, TrainConfig(epochs=2, batch_size=16, compile=compile))

    auto, auto_result = run("auto")
    eager, eager_result = run(False)
    again, _ = run("auto")
    assert not auto_result.compiled and auto_result.compile_reason.startswith("eager (auto: 16 steps")
    assert eager_result.compile_reason == "eager (forced)"
    for (name, a), (_, b), (_, c) in zip(auto.state_dict().items(), eager.state_dict().items(),
                                        again.state_dict().items()):
        assert torch.equal(a, b) and torch.equal(a, c), name
    np.testing.assert_array_equal(auto_result.loss_history, eager_result.loss_history)


COMPILE_ONCE = """
import json, sys, torch
from torch._dynamo.utils import counters
from stableresnet import StableResNet, TrainConfig, fit
X, y = torch.randn(40, 2, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 2
model = StableResNet(2, 2, depth=2, width=3, seed=[1, 2])
result = fit(model, X, y, TrainConfig(epochs=1, batch_size=20, compile=True))
print(json.dumps({"compiled": result.compiled, "hits": counters["inductor"]["fxgraph_cache_hit"],
                  "misses": counters["inductor"]["fxgraph_cache_miss"], "K1": model.field.K1.flatten().tolist()}))
"""


def test_a_new_process_finds_the_graphs_an_earlier_one_compiled_and_lists_the_shape(cache):
    def compile_in_a_new_process():
        done = subprocess.run([sys.executable, "-c", COMPILE_ONCE], capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    cold = compile_in_a_new_process()
    warm = compile_in_a_new_process()
    assert cold["compiled"] and cold["misses"] > 0 and cold["hits"] == 0
    assert warm["compiled"] and warm["misses"] == 0 and warm["hits"] > 0
    assert warm["K1"] == cold["K1"]  # the same graphs: the same numbers to the bit
    listed = json.loads((cache / f"torch-{torch.__version__}" / "compiled-shapes.json").read_text())
    assert len(listed) == 1 and json.loads(next(iter(listed)))["depth"] == 2


THREADS = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from stableresnet import StableResNet, TrainConfig, fit
generator = torch.Generator().manual_seed(0)
X, y = torch.randn(400, 6, generator=generator), torch.randint(0, 3, (400,), generator=generator)
model = StableResNet(6, 3, depth=1, width=32, block="batchnorm", seed=list(range(50)), step_size=0.5)
result = fit(model, X, y, TrainConfig(epochs=1, batch_size=40, compile=True))
print(json.dumps({"threads": torch.get_num_threads(), "K1": model.field.K1.flatten().tolist()}))
"""


def test_compiled_training_gives_the_same_bits_on_one_thread_as_on_two(cache):
    """Kernels are generated for the thread count they run on (a group in a worker thread has one):
    a 50-member batch-norm group, large enough for parallel kernels, trains to the same bits on either."""
    runs = [json.loads(subprocess.run([sys.executable, "-c", THREADS, str(threads)], capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1]) for threads in (1, 2)]
    assert [run["threads"] for run in runs] == [1, 2]
    assert runs[0]["K1"] == runs[1]["K1"]
    listed = json.loads((cache / f"torch-{torch.__version__}" / "compiled-shapes.json").read_text())
    assert sorted(json.loads(key)["threads"] for key in listed) == [1, 2]  # two shapes of the cache


ONE_GRAPH = """
import json, torch
from torch._dynamo.utils import counters
from stableresnet import StableResNet, TrainConfig, fit
X, y = torch.randn(11, 2, generator=torch.Generator().manual_seed(0)), torch.arange(11) % 2
model = StableResNet(2, 2, depth=1, width=3, seed=[1, 2, 3, 4])
fit(model, X, y, TrainConfig(epochs=2, batch_size=4, compile=True))
print(json.dumps({"graphs": counters["stats"]["unique_graphs"]}))
"""


def test_a_batch_as_large_as_the_group_and_the_smaller_last_batch_share_one_graph(cache):
    """Batches of 4, 4 and 3 rows for a 4-member group: Dynamo would give the batch and the members
    one symbol (equal sizes), fix it at 4 and compile a second graph for the last batch (Adult's
    paper sweep: 100 members, batches of 100), which then served every step."""
    done = subprocess.run([sys.executable, "-c", ONE_GRAPH], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1])["graphs"] == 1
