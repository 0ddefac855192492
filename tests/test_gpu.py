"""GPU: the engine on CUDA gives the CPU's numbers; asking for CUDA without a GPU is a clear error."""

import pytest
import torch
from typer.testing import CliRunner

from stableresnet import StableResNet, TrainConfig, evaluate, fit
from stableresnet.cli import app

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@needs_gpu
@pytest.mark.parametrize("block", ["plain", "shrinkage", "batchnorm"])
def test_ensemble_training_on_cuda_matches_cpu(block):
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=generator)
    y = (X[:, 0] * X[:, 1] > 0).long()
    results = {}
    for device in ("cpu", "cuda"):
        model = StableResNet(5, 2, depth=6, width=8, block=block, step_size=[0.1, 0.5, 1.0], seed=[1, 2, 3]).to(device)
        fit(model, X, y, TrainConfig(epochs=3, batch_size=20))
        results[device] = evaluate(model, X, y)["loss"]
    torch.testing.assert_close(torch.tensor(results["cuda"]), torch.tensor(results["cpu"]), rtol=1e-3, atol=1e-4)


@needs_gpu
@pytest.mark.parametrize("block", ["plain", "batchnorm"])
def test_compiled_training_on_cuda_matches_eager(block):
    """On CUDA ``compile`` captures the step as CUDA graphs (mode "reduce-overhead"); same numbers to round-off."""
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=generator)
    y = (X[:, 0] * X[:, 1] > 0).long()
    results = {}
    for compile in (False, True):
        model = StableResNet(5, 2, depth=6, width=8, block=block, step_size=[0.1, 0.5, 1.0], seed=[1, 2, 3]).cuda()
        fit(model, X, y, TrainConfig(epochs=3, batch_size=20, compile=compile))
        results[compile] = evaluate(model, X, y)["loss"]
    torch.testing.assert_close(torch.tensor(results[True]), torch.tensor(results[False]), rtol=1e-3, atol=1e-4)


@needs_gpu
def test_sweep_runs_on_cuda(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "--dataset", "wine", "--trials", "1", "--epochs", "2", "--depth", "3",
                                      "--step-sizes", "0.1,1", "--device", "cuda", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where no GPU exists")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["train", "--dataset", "wine", "--device", "cuda"])
    assert result.exit_code == 2
    assert "--device cuda was asked for but PyTorch sees no CUDA GPU here" in " ".join(result.output.split())
