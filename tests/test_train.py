"""Training: determinism, learning, divergence as a result, ensemble independence, bad input."""

import time

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from torch.nn import functional as F

from stableresnet import ConfigError, StableResNet, TrainConfig, evaluate, fit
from stableresnet import train
from stableresnet.train import Checkpoint
from stableresnet.model import member_generator


@pytest.fixture(scope="module")
def moons():
    X, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


def trained(X, y, **kwargs):
    model = StableResNet(2, 2, depth=kwargs.pop("depth", 5), width=8, seed=kwargs.pop("seed", 0), **kwargs)
    result = fit(model, X, y, TrainConfig(epochs=15, batch_size=16, learning_rate=1e-2))
    return model, result


def test_same_seed_gives_bit_identical_weights_and_predictions(moons):
    X, y = moons
    first, _ = trained(X, y, seed=11, block="batchnorm")
    second, _ = trained(X, y, seed=11, block="batchnorm")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(first(X), second(X))
    third, _ = trained(X, y, seed=12, block="batchnorm")
    assert not torch.equal(first.field.K1, third.field.K1)


def test_sgd_steps_to_the_same_bits_with_its_fused_kernel_as_with_foreach(moons, monkeypatch):
    """Plain SGD's update p - lr·g is one multiply-add either way, so ``KERNELS`` may take the faster one."""
    X, y = moons
    weights = {}
    for kernel in ("foreach", "fused"):
        monkeypatch.setitem(train.KERNELS, "sgd", {kernel: True})
        model = StableResNet(2, 2, depth=5, width=8, seed=[0, 1, 2], step_size=[0.1, 0.5, 1.0])
        fit(model, X, y, TrainConfig(epochs=5, batch_size=16, learning_rate=1e-1, optimizer="sgd"))
        weights[kernel] = model.state_dict()
    for name, value in weights["fused"].items():
        assert torch.equal(value, weights["foreach"][name]), name
    assert not torch.equal(weights["fused"]["field.K1"], StableResNet(2, 2, depth=5, width=8, seed=[0, 1, 2]).field.K1)


@pytest.mark.parametrize("block", ["plain", "shrinkage", "batchnorm"])
def test_results_do_not_depend_on_torch_thread_count(block):
    """A Wine-sized group (100 members, width 13, batch 10) trains to the same bits on 1 and 2 threads.

    Batch norm's CPU kernel, fed (B, M·d) channels, split each channel's batch between threads,
    so this block's numbers changed with the thread count (a one-thread worker disagreed with
    the two-thread main process); fed (1, M·d, B) it sums each channel in one thread.
    """
    generator = torch.Generator().manual_seed(0)
    X, y = torch.randn(60, 13, generator=generator), torch.randint(0, 3, (60,), generator=generator)
    threads, states = torch.get_num_threads(), []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            model = StableResNet(13, 3, depth=2, block=block, step_size=0.5, seed=list(range(100)))
            fit(model, X, y, TrainConfig(epochs=1, batch_size=10))
            states.append(model.state_dict())
    finally:
        torch.set_num_threads(threads)
    for name, tensor in states[0].items():
        assert torch.equal(tensor, states[1][name]), name


@pytest.mark.parametrize("block", ["plain", "shrinkage", "batchnorm"])
def test_each_block_learns_the_moons(moons, block):
    X, y = moons
    model, result = trained(X, y, block=block, step_size=0.5)
    assert not result.diverged[0]
    assert result.loss_history[-1, 0] < result.loss_history[0, 0]
    assert evaluate(model, X, y)["accuracy"][0] >= 0.85


def test_standardisation_is_fitted_on_the_training_rows_only(moons):
    X, y = moons
    X = X * 100 + 7
    model = StableResNet(2, 2, depth=1, seed=0)
    train_rows = torch.arange(0, 100).unsqueeze(0)
    fit(model, X, y, TrainConfig(epochs=1), train_index=train_rows)
    torch.testing.assert_close(model.input_mean[0, 0], X[:100].mean(0))
    torch.testing.assert_close(model.input_scale[0, 0], X[:100].std(0, unbiased=False))


def test_deep_plain_resnet_on_unscaled_data_is_reported_not_crashed():
    """100 plain blocks at h = 1 on raw, large-valued features: diverged or finite, never an exception."""
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(300, 4, generator=generator) * 1e4
    y = (X[:, 0] > X[:, 1]).long()
    config = TrainConfig(epochs=3, batch_size=30, standardize=False)
    vanilla = StableResNet(4, 2, depth=100, step_size=1.0, seed=0)
    result = fit(vanilla, X, y, config)
    metrics = evaluate(vanilla, X, y)
    if result.diverged[0]:
        assert 0 <= result.diverged_epoch[0] < 3
        assert all(torch.isfinite(p).all() for p in vanilla.parameters())  # frozen at last finite weights
    else:
        assert np.isfinite(result.loss_history).all()
    assert 0.0 <= metrics["accuracy"][0] <= 1.0
    # The same data at h = 0.1 (standardised by the trainer, its default) trains well.
    small_h = StableResNet(4, 2, depth=100, step_size=0.1, seed=0)
    result = fit(small_h, X, y, TrainConfig(epochs=10, batch_size=30, learning_rate=1e-2))
    assert not result.diverged[0]
    assert evaluate(small_h, X, y)["accuracy"][0] > 0.9


def test_a_diverged_member_is_frozen_and_the_others_carry_on(moons):
    """Member 1 gets an absurd step size and blows up; member 0 trains exactly as it would alone."""
    X, y = moons
    config = TrainConfig(epochs=4, batch_size=20, learning_rate=1e-2)
    ensemble = StableResNet(2, 2, depth=30, step_size=[0.3, 1e30], seed=[4, 4])
    result = fit(ensemble, X, y, config)
    assert result.diverged.tolist() == [False, True]
    assert result.diverged_epoch[1] == 0
    initial = StableResNet(2, 2, depth=30, step_size=1e30, seed=4)
    # Frozen at the weights it had when its loss first went non-finite (here: the very first step).
    torch.testing.assert_close(ensemble.field.K1[1], initial.field.K1[0])
    alone = StableResNet(2, 2, depth=30, step_size=0.3, seed=4)
    fit(alone, X, y, config)
    torch.testing.assert_close(ensemble.field.K1[0], alone.field.K1[0])
    np.testing.assert_allclose(evaluate(ensemble, X, y)["accuracy"][0], evaluate(alone, X, y)["accuracy"][0])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda X, y: (X.clone().fill_(float("nan")), y), "NaN or infinite"),
        (lambda X, y: (torch.where(X > 0, float("inf"), X), y), "NaN or infinite"),
        (lambda X, y: (X, y[:-1]), "to match X"),
        (lambda X, y: (X[:, :1], y), "shape"),
        (lambda X, y: (X, y + 5), "class indices"),
    ],
)
def test_bad_training_data_is_refused(moons, mutate, message):
    X, y = mutate(*moons)
    with pytest.raises(ConfigError, match=message):
        fit(StableResNet(2, 2, depth=2), X, y, TrainConfig(epochs=1))


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(epochs=0), "epochs"), (dict(batch_size=0), "batch_size"), (dict(learning_rate=-1.0), "learning_rate"),
     (dict(optimizer="lbfgs"), "unknown optimizer"), (dict(compile="yes"), "compile must be true, false or 'auto'; got 'yes'")],
)
def test_bad_training_config_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("compile", [False, True, "auto"])
def test_a_member_forced_to_diverge_mid_epoch_is_frozen_and_its_neighbours_are_unchanged_to_the_bit(moons, compile):
    """Member 1's split holds one row of float32's largest value: its batch overflows mid-epoch 0.

    Its parameters must be those of an explicit reference loop (same seed, same batch order, Adam)
    stopped just before that batch; members 0 and 2 must equal, bit for bit, a run where member 1's
    split is clean. Compiled (fused kernels) as well as eager, and under "auto" (here eager: a short run).
    """
    X, y = moons
    poison = X.shape[0]
    X = torch.cat([X, torch.full((1, 2), torch.finfo(torch.float32).max)])
    y = torch.cat([y, y[:1]])
    clean = torch.arange(100).expand(3, -1)
    poisoned = clean.clone()
    poisoned[1, -1] = poison
    config = TrainConfig(epochs=3, batch_size=10, learning_rate=1e-2, standardize=False, compile=compile)

    def ensemble(rows):
        model = StableResNet(2, 2, depth=5, width=8, step_size=0.2, seed=[5, 6, 7])
        return model, fit(model, X, y, config, train_index=rows)

    model, result = ensemble(poisoned)
    assert result.diverged.tolist() == [False, True, False]
    assert result.diverged_epoch.tolist() == [-1, 0, -1]
    assert np.isnan(result.loss_history[:, 1]).all() and np.isfinite(result.loss_history[:, [0, 2]]).all()

    reference = StableResNet(2, 2, depth=5, width=8, step_size=0.2, seed=6)
    optimizer = torch.optim.Adam(reference.parameters(), lr=config.learning_rate)
    order = poisoned[1][torch.randperm(100, generator=member_generator(6, "batches"))]
    batches = order.split(config.batch_size)
    poisoned_batch = next(i for i, batch in enumerate(batches) if poison in batch)
    assert 0 < poisoned_batch < len(batches) - 1, "the poisoned row should fall mid-epoch"
    for batch in batches[:poisoned_batch]:
        optimizer.zero_grad()
        F.cross_entropy(reference(X[batch]), y[batch]).backward()
        optimizer.step()
    for (name, trained), (_, expected) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.isfinite(trained[1]).all(), name
        torch.testing.assert_close(trained[1], expected[0], rtol=1e-5, atol=1e-6, msg=name)

    unpoisoned, unpoisoned_result = ensemble(clean)
    for (name, a), (_, b) in zip(model.state_dict().items(), unpoisoned.state_dict().items()):
        assert torch.equal(a[[0, 2]], b[[0, 2]]), name
    np.testing.assert_array_equal(result.loss_history[:, [0, 2]], unpoisoned_result.loss_history[:, [0, 2]])


class Killed(Exception):
    """Stands for a kill between epochs."""


@pytest.mark.parametrize("block, policy", [("plain", "fixed"), ("batchnorm", "adaptive"), ("shrinkage", "learnable")])
def test_a_run_killed_between_epochs_resumes_from_its_checkpoint_to_the_numbers_of_an_uninterrupted_one(
        moons, tmp_path, block, policy):
    """Parameters, Adam's moments, batch-norm statistics, the adaptive policy's averages and each
    member's batch order all carry over: the resumed run ends bit for bit where an uninterrupted
    one does, with the same loss history. The finished state is saved too: run again, fit trains
    nothing and returns the same numbers.
    Member 1 diverges (its split holds a row of float32's largest value), so its mark carries over too."""
    X, y = moons
    poison = X.shape[0]
    X = torch.cat([X, torch.full((1, 2), torch.finfo(torch.float32).max)])
    y = torch.cat([y, y[:1]])
    rows = torch.arange(100).expand(3, -1).clone()
    rows[1, 5] = poison
    config = TrainConfig(epochs=5, batch_size=16, learning_rate=1e-2, standardize=False)

    def model():
        return StableResNet(2, 2, depth=3, width=4, block=block, step_size=[0.1, 0.5, 1.0], seed=[1, 2, 3],
                            step_size_policy=policy)

    whole = model()
    whole_result = fit(whole, X, y, config, train_index=rows)
    assert whole_result.diverged.tolist() == [False, True, False]

    checkpoint = Checkpoint(tmp_path / "group.checkpoint", every_seconds=0)
    seen = []

    def killed_after_epoch_2(epoch, loss):
        seen.append(epoch)
        if epoch == 2:
            raise Killed

    started = time.perf_counter()
    with pytest.raises(Killed):
        fit(model(), X, y, config, train_index=rows, on_epoch=killed_after_epoch_2, checkpoint=checkpoint)
    stopped_after = time.perf_counter() - started
    assert checkpoint.path.is_file()
    resumed = model()
    result = fit(resumed, X, y, config, train_index=rows, on_epoch=lambda epoch, loss: seen.append(epoch),
                 checkpoint=checkpoint)
    assert seen == [0, 1, 2, 3, 4]  # the saved epochs were not trained again
    assert whole_result.resumed_seconds == 0 and 0 < result.resumed_seconds < stopped_after  # epochs 0-2's time
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(result.loss_history, whole_result.loss_history)
    assert result.diverged_epoch.tolist() == whole_result.diverged_epoch.tolist()
    seen.clear()
    again = model()
    again_result = fit(again, X, y, config, train_index=rows, on_epoch=lambda epoch, loss: seen.append(epoch),
                       checkpoint=checkpoint)
    assert seen == []
    for (name, a), (_, b) in zip(whole.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(again_result.loss_history, whole_result.loss_history)


def test_a_checkpoint_of_another_run_or_damaged_is_not_used(moons, tmp_path):
    X, y = moons
    checkpoint = Checkpoint(tmp_path / "run.checkpoint", every_seconds=0)
    config = TrainConfig(epochs=3, batch_size=16, learning_rate=1e-2)

    def stop(epoch, loss):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        fit(StableResNet(2, 2, depth=3, width=4, seed=1), X, y, config, on_epoch=stop, checkpoint=checkpoint)
    other, seen = StableResNet(2, 2, depth=3, width=4, seed=2), []
    fit(other, X, y, config, on_epoch=lambda epoch, loss: seen.append(epoch), checkpoint=checkpoint)
    assert seen == [0, 1, 2]  # seed 2 trained from its start, not from seed 1's state
    reference = StableResNet(2, 2, depth=3, width=4, seed=2)
    fit(reference, X, y, config)
    for (name, a), (_, b) in zip(other.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name

    checkpoint.path.write_bytes(b"not a checkpoint")  # damaged: trained from the start, then overwritten
    damaged, seen = StableResNet(2, 2, depth=3, width=4, seed=2), []
    numpy_epochs = TrainConfig(epochs=np.int64(3), batch_size=16, learning_rate=1e-2)  # numpy integers are accepted
    fit(damaged, X, y, numpy_epochs, on_epoch=lambda epoch, loss: seen.append(epoch), checkpoint=checkpoint)
    assert seen == [0, 1, 2] and torch.equal(damaged.field.K1, reference.field.K1)
    with pytest.raises(ConfigError, match="every_seconds must be a finite number ≥ 0; got nan"):
        Checkpoint(checkpoint.path, every_seconds=float("nan"))


@pytest.mark.parametrize("block", ["plain", "batchnorm"])
def test_compiled_training_matches_the_eager_engine_to_round_off_and_repeats_to_the_bit(moons, block):
    """``TrainConfig(compile=True)``: the same seeds, batches and updates through fused kernels.

    200 rows in batches of 16 end in a batch of 8 (a second shape for the one compiled graph). Fused kernels may
    round differently, so parameters and batch-norm statistics are compared to round-off, and a
    second compiled run must repeat the first to the bit.
    """
    X, y = moons

    def run(compile):
        model = StableResNet(2, 2, depth=3, width=4, block=block, step_size=[0.1, 0.5, 1.0], seed=[1, 2, 3])
        result = fit(model, X, y, TrainConfig(epochs=2, batch_size=16, learning_rate=1e-2, compile=compile))
        return model, result

    eager, eager_result = run(False)
    compiled, compiled_result = run(True)
    again, _ = run(True)
    for (name, a), (_, b), (_, c) in zip(eager.state_dict().items(), compiled.state_dict().items(),
                                        again.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
        assert torch.equal(b, c), name
    np.testing.assert_allclose(compiled_result.loss_history, eager_result.loss_history, rtol=1e-5)
    assert compiled_result.diverged.tolist() == [False] * 3
