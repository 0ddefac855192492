"""Stability diagnostics against exact answers: finite differences, known spectra, closed-form FGSM."""

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from typer.testing import CliRunner

from stableresnet import StableResNet, TrainConfig, evaluate, fit, save_model
from stableresnet.blocks import INTEGRATORS, VECTOR_FIELDS
from stableresnet.cli import app
from stableresnet.data import load_dataset, load_table
from stableresnet.diagnostics import (
    _as_inputs,
    analysis_copy,
    fgsm,
    field_jacobian,
    layer_spectra,
    member_robustness,
    perturbation_growth,
    pgd,
    robust_accuracy,
    step_jacobian,
)
from stableresnet.viz.diagnostics import plot_amplification, plot_eigenvalues, plot_growth, plot_robust_accuracy
from toy_tables import write_toy_csv

WIDTH = 4


def random_model(block, activation="relu", depth=2, step_size=(0.3, 0.7), seed=0):
    """A two-member float64 model whose every parameter and running statistic is random."""
    model = StableResNet(WIDTH, 3, depth, block=block, step_size=list(step_size), activation=activation,
                         seed=[0, 1]).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.field.named_parameters()) + list(model.field.named_buffers()):
            draw = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
            # Running variances must be positive; everything else may take any sign.
            tensor.copy_(draw.abs() + 0.5 if "running_var" in name else draw)
    return model.eval()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("block", sorted(VECTOR_FIELDS))
def test_block_jacobian_equals_finite_differences(block, activation):
    model = random_model(block, activation)
    y = torch.randn(2, 5, WIDTH, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    jacobian = field_jacobian(model, 1, y)  # (M, B, out, in)
    layer = model.field.layers()[1]
    step = 1e-6
    with torch.no_grad():
        for j in range(WIDTH):
            shift = torch.zeros(WIDTH, dtype=torch.float64)
            shift[j] = step
            column = (model.field(y + shift, layer, 1) - model.field(y - shift, layer, 1)) / (2 * step)
            torch.testing.assert_close(jacobian[..., j], column, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("integrator", sorted(INTEGRATORS))
def test_step_jacobian_equals_finite_differences_of_the_block(integrator, activation):
    block = "hamiltonian" if INTEGRATORS[integrator].needs_separable_streams else "plain"
    model = StableResNet(WIDTH, 3, 2, block=block, step_size=[0.3, 0.7], activation=activation,
                         integrator=integrator, seed=[0, 1]).double().eval()
    y = torch.randn(2, 5, WIDTH, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    jacobian = step_jacobian(model, 1, y)  # (M, B, out, in)
    layer = model.field.layers()[1]

    def block_map(z):  # block 1 by hand: the integrator with each member's given h
        return INTEGRATORS[integrator]().step(lambda u: model.field(u, layer, 1), z, model.step_size)

    step = 1e-6
    with torch.no_grad():
        for j in range(WIDTH):
            shift = torch.zeros(WIDTH, dtype=torch.float64)
            shift[j] = step
            column = (block_map(y + shift) - block_map(y - shift)) / (2 * step)
            torch.testing.assert_close(jacobian[..., j], column, rtol=1e-6, atol=1e-7)


def linear_plain_model(step_size=0.4, depth=3, **options):
    """Plain field, linear at the data: b1 so large that relu is the identity and b2 = −K2 b1, so F(y) = K2 K1 y."""
    model = StableResNet(WIDTH, 2, depth, block="plain", step_size=step_size, seed=3, **options).double().eval()
    with torch.no_grad():
        model.field.b1.fill_(100.0)
        model.field.b2.copy_(-model.field.b1 @ model.field.K2.transpose(-1, -2))
    return model


def test_spectra_of_a_linear_block_are_the_eigenvalues_of_k2_k1():
    model = linear_plain_model(step_size=0.4)
    X = np.random.default_rng(0).normal(size=(6, WIDTH))
    spectra = layer_spectra(model, X)
    for layer in range(model.depth):
        K1 = model.field.K1[0, layer].detach().numpy()
        K2 = model.field.K2[0, layer].detach().numpy()
        expected = np.sort_complex(np.linalg.eigvals(K2 @ K1))
        for sample in range(len(X)):
            np.testing.assert_allclose(np.sort_complex(spectra.eigenvalues[0, layer, sample]), expected, atol=1e-10)
        np.testing.assert_allclose(spectra.max_real[0, layer], expected.real.max(), atol=1e-10)
        np.testing.assert_allclose(spectra.max_amplification[0, layer], np.abs(1 + 0.4 * expected).max(), atol=1e-10)
        assert spectra.stable_fraction[0, layer] == float(np.abs(1 + 0.4 * expected).max() <= 1 + 1e-9)


def test_growth_of_a_linear_network_follows_the_matrix_powers():
    # Perturbations of a linear network obey δ(t+1) = (I + h K2 K1) δ(t) exactly.
    h = 0.4
    model = linear_plain_model(step_size=h, depth=3)
    X = np.random.default_rng(0).normal(size=(5, WIDTH))
    growth = perturbation_growth(model, X, epsilon=1e-3, seed=0)
    direction = torch.randn(5, WIDTH, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    delta = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    for layer in range(model.depth + 1):
        np.testing.assert_allclose(growth.ratio[0, layer], np.linalg.norm(delta, axis=1), rtol=1e-7)
        if layer < model.depth:
            step = np.eye(WIDTH) + h * model.field.K2[0, layer].detach().numpy() @ model.field.K1[0, layer].detach().numpy()
            delta = delta @ step.T


# Coefficients 1/k! of each Runge–Kutta method's stability polynomial R(z) = Σ_{k ≤ order} z^k / k!.
STABILITY_POLYNOMIAL = {"euler": [1, 1], "heun": [1, 1, 1 / 2], "midpoint": [1, 1, 1 / 2],
                        "rk4": [1, 1, 1 / 2, 1 / 6, 1 / 24]}


def stability_polynomial(integrator, Z):
    """R(Z) for a square matrix Z."""
    return sum(c * np.linalg.matrix_power(Z, k) for k, c in enumerate(STABILITY_POLYNOMIAL[integrator]))


def set_block_step_sizes(model, step_sizes):
    """Make the eval-mode h_i of one member equal ``step_sizes`` (depth,), through the policy's own state."""
    h_i = torch.tensor(step_sizes, dtype=torch.float64).view(1, -1)
    policy = model.step_policy
    with torch.no_grad():
        if model.step_size_policy == "learnable":
            # h_i = h_max − (h_max − h_min) σ(−θ_i)  ⇔  θ_i = log((1 − s)/s), s = (h_max − h_i)/(h_max − h_min).
            h_max = policy.max_step_size
            share = (h_max - h_i) / (h_max - policy.min_fraction * h_max)
            policy.theta.copy_(torch.log((1 - share) / share))
        elif model.step_size_policy == "adaptive":
            policy.average_step_size.copy_(h_i)


@pytest.mark.parametrize("policy", ["fixed", "learnable", "adaptive"])
@pytest.mark.parametrize("integrator", sorted(STABILITY_POLYNOMIAL))
def test_linear_blocks_amplify_by_the_stability_polynomial_of_their_own_step_size(integrator, policy):
    """F_i(y) = A_i y at the data: Φ_i = R(h_i A_i), so amplification max |R(h_i λ)| and δ(t+1) = R(h_t A_t) δ(t)."""
    h = 0.375  # exact in float32, where the model is built
    step_sizes = [h] * 3 if policy == "fixed" else [0.125, 0.5, 0.625]  # h_max = 2h = 0.75
    model = linear_plain_model(step_size=h, depth=3, integrator=integrator, step_size_policy=policy)
    set_block_step_sizes(model, step_sizes)
    X = np.random.default_rng(0).normal(size=(5, WIDTH))
    spectra = layer_spectra(model, X)
    np.testing.assert_allclose(spectra.block_step_sizes[0], step_sizes, rtol=1e-12)
    np.testing.assert_allclose(spectra.step_size, [h])
    growth = perturbation_growth(model, X, epsilon=1e-3, seed=0)
    direction = torch.randn(5, WIDTH, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    delta = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    for layer, h_i in enumerate(step_sizes):
        A = model.field.K2[0, layer].detach().numpy() @ model.field.K1[0, layer].detach().numpy()
        z = h_i * np.linalg.eigvals(A)
        amplification = np.abs(sum(c * z**k for k, c in enumerate(STABILITY_POLYNOMIAL[integrator]))).max()
        np.testing.assert_allclose(spectra.max_amplification[0, layer], amplification, rtol=1e-10)
        assert spectra.stable_fraction[0, layer] == float(amplification <= 1 + 1e-9)
        np.testing.assert_allclose(growth.ratio[0, layer], np.linalg.norm(delta, axis=1), rtol=1e-7)
        delta = delta @ stability_polynomial(integrator, h_i * A).T
    np.testing.assert_allclose(growth.ratio[0, -1], np.linalg.norm(delta, axis=1), rtol=1e-7)


@pytest.mark.parametrize("block", sorted(set(VECTOR_FIELDS) - {"hamiltonian"}))
def test_euler_amplification_is_propositions_one_plus_h_lambda(block):
    """For forward Euler ∂Φ_i/∂y = I + hJ_i, so max |eig(∂Φ_i/∂y)| = max |1 + hλ(J_i)| on any field.

    layer_spectra computes it from λ; the reference differentiates the block map itself."""
    model = random_model(block)
    X = np.random.default_rng(0).normal(size=(9, WIDTH))
    spectra = layer_spectra(model, X)
    net = analysis_copy(model)
    with torch.no_grad():
        trajectory = net(_as_inputs(net, X), return_trajectory=True)[1]
    for index in range(net.depth):
        of_block_map = torch.linalg.eigvals(step_jacobian(net, index, trajectory[index])).abs().amax(dim=(1, 2))
        np.testing.assert_allclose(spectra.max_amplification[:, index], of_block_map.numpy(), rtol=1e-10)
    h = spectra.step_size.reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(spectra.max_amplification, np.abs(1 + h * spectra.eigenvalues).max(axis=(2, 3)),
                               rtol=1e-10)


def test_leapfrog_on_a_linear_hamiltonian_block_has_unit_amplification_below_h_omega_two():
    """Columns of K1 orthogonal to 1 and b = 100·1 make F(p, q) = (BᵀB q, −AᵀA p) at the data, λ = ±iω.

    Leapfrog's step matrix is symplectic: all its eigenvalues have modulus 1 for hω_max < 2; above,
    one real pair μ, 1/μ leaves the unit circle.
    """
    base = StableResNet(WIDTH, 2, depth=1, block="hamiltonian", integrator="leapfrog", seed=2).double()
    K1 = base.field.K1[0, 0].detach()
    K1 = K1 - K1.mean(dim=0, keepdim=True)  # 1ᵀA = 1ᵀB = 0
    half = WIDTH // 2
    A, B = K1[:, :half].numpy(), K1[:, half:].numpy()
    omega = np.sqrt(np.linalg.eigvals(B.T @ B @ A.T @ A).real.max())
    model = StableResNet(WIDTH, 2, depth=1, block="hamiltonian", integrator="leapfrog", seed=2,
                         step_size=[1.5 / omega, 3 / omega]).double().eval()
    with torch.no_grad():
        model.field.K1.copy_(K1.expand_as(model.field.K1))
        model.field.b1.fill_(100.0)
        model.field.b2.fill_(100.0)
    spectra = layer_spectra(model, np.random.default_rng(0).normal(size=(6, WIDTH)))
    np.testing.assert_allclose(spectra.max_real, 0, atol=1e-12)
    np.testing.assert_allclose(spectra.max_imag, omega, rtol=1e-10)
    np.testing.assert_allclose(spectra.max_amplification[0], 1, rtol=1e-10)
    assert spectra.stable_fraction[0, 0] == 1
    h = model.step_size[1].item()  # 3/ω rounded to float32; kick–drift–kick on (p, q) below
    kick, drift = np.eye(WIDTH), np.eye(WIDTH)
    kick[:half, half:] = h / 2 * B.T @ B
    drift[half:, :half] = -h * A.T @ A
    expected = np.abs(np.linalg.eigvals(kick @ drift @ kick)).max()
    assert expected > 1.5
    np.testing.assert_allclose(spectra.max_amplification[1], expected, rtol=1e-10)
    assert spectra.stable_fraction[1, 0] == 0


# Zero parameters make F = 0 in every field but the antisymmetric one, whose −γI shift
# leaves F(y) = σ(−γ y) ≠ 0 (Haber & Ruthotto's damping).
@pytest.mark.parametrize("width", [None, 6])
@pytest.mark.parametrize("block", sorted(set(VECTOR_FIELDS) - {"antisymmetric"}))
def test_identity_network_has_growth_exactly_one(block, width):
    model = StableResNet(WIDTH, 2, depth=5, width=width, block=block, step_size=[1.0, 0.1], seed=0)
    with torch.no_grad():
        for parameter in model.field.parameters():
            parameter.zero_()
    X = np.random.default_rng(0).normal(size=(7, WIDTH))
    growth = perturbation_growth(model, X, epsilon=1e-2)
    assert growth.ratio.shape == (2, 6, 7)
    assert (growth.ratio == 1.0).all()
    assert (growth.stability_constant == 1.0).all()


@pytest.fixture(scope="module")
def wine():
    return load_dataset("wine", seed=0)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_trained_shrinkage_eigenvalues_are_real_and_nonpositive(wine, activation):
    model = StableResNet(13, 3, depth=6, block="shrinkage", step_size=[1.0, 0.1], activation=activation, seed=0)
    fit(model, torch.tensor(wine.X_train, dtype=torch.float32), torch.tensor(wine.y_train),
        TrainConfig(epochs=3, batch_size=10, learning_rate=1e-2))
    assert not torch.equal(model.field.K1, StableResNet(13, 3, 6, block="shrinkage", seed=0).field.K1)  # trained
    spectra = layer_spectra(model, wine.X_test)
    assert np.isfinite(spectra.eigenvalues).all()
    assert np.abs(spectra.eigenvalues.imag).max() <= 1e-9
    assert spectra.eigenvalues.real.max() <= 1e-6
    assert (spectra.max_real <= 1e-6).all()


def logistic_model(seed=0):
    """A one-block network whose block is the identity: logits = W (x − μ)/s + b, a softmax-linear model."""
    rng = np.random.default_rng(seed)
    model = StableResNet(WIDTH, 3, depth=1, block="plain", step_size=1.0, seed=0).double()
    with torch.no_grad():
        for parameter in model.field.parameters():
            parameter.zero_()
        model.head.weight.copy_(torch.tensor(rng.normal(size=(1, 3, WIDTH))))
        model.head.bias.copy_(torch.tensor(rng.normal(size=(1, 1, 3))))
        model.input_mean.copy_(torch.tensor(rng.normal(size=(1, 1, WIDTH))))
        model.input_scale.copy_(torch.tensor(rng.uniform(0.5, 3.0, size=(1, 1, WIDTH))))
    return model.eval()


def test_fgsm_on_a_logistic_model_steps_along_the_sign_of_the_closed_form_gradient():
    model = logistic_model()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, WIDTH))
    y = rng.integers(0, 3, size=20)
    W, b = model.head.weight[0].detach().numpy(), model.head.bias[0, 0].detach().numpy()
    mean, scale = model.input_mean[0, 0].numpy(), model.input_scale[0, 0].numpy()
    logits = ((X - mean) / scale) @ W.T + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    gradient = (p - np.eye(3)[y]) @ W  # ∂loss/∂z = Wᵀ(p − onehot), per row
    epsilon = 0.3
    adversarial = fgsm(model, X, y, epsilon)[0].numpy()
    np.testing.assert_allclose(adversarial, X + epsilon * scale * np.sign(gradient), rtol=0, atol=1e-12)
    # One PGD step of full size from the clean point is FGSM; PGD never leaves the ε-ball.
    one_step = pgd(model, X, y, epsilon, n_steps=1, step_fraction=1.0, random_start=False)[0].numpy()
    np.testing.assert_allclose(one_step, adversarial, rtol=0, atol=1e-12)
    many = pgd(model, X, y, epsilon, n_steps=7, seed=2)[0].numpy()
    assert (np.abs(many - X) / scale <= epsilon + 1e-12).all()
    # The attack lowers accuracy and raises the loss of every row of a linear model.
    labels = torch.tensor(y)
    clean = evaluate(model, torch.tensor(X), labels)
    attacked = evaluate(model, torch.tensor(adversarial), labels)
    assert attacked["loss"][0] > clean["loss"][0] and attacked["accuracy"][0] <= clean["accuracy"][0]


def test_zero_sized_perturbations_give_the_clean_accuracy():
    model = random_model("plain")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, WIDTH)), rng.integers(0, 3, size=30)
    clean = evaluate(model, torch.tensor(X), torch.tensor(y))["accuracy"]
    result = robust_accuracy(model, X, y, sigmas=[0.0, 5.0], epsilons=[0.0, 1.0], pgd_steps=3)
    for kind in ("noise", "fgsm", "pgd"):
        np.testing.assert_allclose(result[kind][:, 0], clean)
    assert result["noise"].shape == (2, 2) and result["pgd"].shape == (2, 2)
    assert (result["pgd"][:, 1] <= result["fgsm"][:, 1] + 0.2).all()


def test_member_robustness_gives_one_value_per_member_and_leaves_the_model_alone():
    model = random_model("shrinkage")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, WIDTH)), rng.integers(0, 3, size=40)
    result = member_robustness(model, X, y, sigma=0.1, epsilon=0.1, pgd_steps=2, max_samples=16)
    assert set(result) >= {"stability_constant", "max_amplification", "noise_accuracy", "fgsm_accuracy"}
    assert all(v.shape == (2,) for v in result.values())
    np.testing.assert_allclose(result["step_size"], [0.3, 0.7])
    assert (result["stability_constant"] >= 0).all()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.step_size.dtype == torch.float64 and analysis_copy(model) is not model


def test_bad_arguments_are_config_errors():
    from stableresnet.model import ConfigError

    model = random_model("plain")
    X = np.zeros((3, WIDTH))
    with pytest.raises(ConfigError, match="X must have shape"):
        layer_spectra(model, np.zeros((3, WIDTH + 1)))
    with pytest.raises(ConfigError, match="layers must be block indices"):
        layer_spectra(model, X, layers=[5])
    with pytest.raises(ConfigError, match="epsilon must be a finite number > 0"):
        perturbation_growth(model, X, epsilon=0.0)
    with pytest.raises(ConfigError, match="y must hold class indices"):
        fgsm(model, X, [0, 1, 7], 0.1)


def test_figures_draw_the_stability_disc_and_curves():
    values = np.array([[-1.0 + 0.5j, 0.2 + 0j]])
    figure = plot_eigenvalues({"layer 0": values}, step_size=0.5)
    disc = next(p for p in figure.axes[0].patches if isinstance(p, Circle))
    assert disc.center == (-2.0, 0) and disc.radius == 2.0
    axes = Figure().subplots(1, 3)
    assert plot_amplification({"a": np.ones(3)}, ax=axes[0]) is axes[0].figure
    assert isinstance(plot_growth({"a": np.array([1.0, 3.0, 9.0])}), Figure)
    assert isinstance(plot_robust_accuracy([0, 0.1], {"a": np.array([1.0, 0.5])}, "σ"), Figure)


runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result, result.stdout + (result.stderr or "")


TINY = ("--depth", 3, "--epochs", 1, "--samples", 8, "--sigma", 0, "--sigma", 0.5, "--epsilon", 0,
        "--epsilon", 0.1, "--pgd-steps", 2)


def test_diagnose_writes_records_and_figures(tmp_path):
    out = tmp_path / "diag"
    result, text = run("diagnose", "--dataset", "wine", "--block", "plain", "--block", "shrinkage",
                       "--step-size", 1, "--step-size", 0.1, *TINY, "--out", out)
    assert result.exit_code == 0, text
    names = {p.name for p in out.iterdir()}
    assert {"spectra.csv", "eigenvalues.csv", "growth.csv", "robustness.csv", "summary.json", "amplification.png",
            "growth.png", "robustness.png", "eigenvalues_shrinkage_h0.1.png"} <= names
    assert not any(name.startswith(".") for name in names)  # no temporary files left
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert len(summary) == 4
    shrinkage = [row for row in summary if row["block"] == "shrinkage"]
    assert all(row["max_real"] <= 1e-6 for row in shrinkage)


def test_diagnose_a_saved_model(tmp_path, wine):
    model = StableResNet(13, 3, depth=2, block="shrinkage", step_size=0.2, seed=0)
    path = save_model(tmp_path / "m.safetensors", model, extra={"params": {"random_state": 0}})
    result, text = run("diagnose", "--dataset", "wine", "--model", path, *TINY[4:], "--out", tmp_path / "d")
    assert result.exit_code == 0, text
    assert (tmp_path / "d" / "eigenvalues_shrinkage_h0.2.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "wine", "--step-size", "0"], "step_size h must be a finite number > 0"),
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        (["--dataset", "wine", "--samples", "0"], "--samples must be an integer ≥ 1"),
        (["--dataset", "wine", "--step-size", "0.1", "--step-size", "0.1"], "must be distinct"),
        (["--dataset", "wine", "--model", "missing.safetensors"], "does not exist"),
        (["--dataset", "abalone", "--model", "MODEL"], "expects 13 features"),
    ],
)
def test_diagnose_user_mistakes_give_exit_2(tmp_path, args, message):
    model_path = save_model(tmp_path / "m.safetensors", StableResNet(13, 3, depth=1, seed=0))
    args = [str(model_path) if a == "MODEL" else a for a in args]
    result, text = run("diagnose", *args, "--depth", 1, "--epochs", 1, "--out", tmp_path / "never")
    assert result.exit_code == 2, text
    assert message in " ".join(text.split())
    assert "Traceback" not in text
    assert not (tmp_path / "never").exists()


def test_diagnose_on_a_user_csv_writes_records_named_after_the_file(tmp_path):
    csv = write_toy_csv(tmp_path / "toy.csv")
    out = tmp_path / "diag"
    result, text = run("diagnose", "--data", csv, "--target", "label", "--one-hot", "--block", "shrinkage",
                       "--step-size", 0.5, *TINY, "--out", out)
    assert result.exit_code == 0, text
    record = json.loads((out / "summary.json").read_text())
    assert record["dataset"] == "toy" and record["data_file"] == str(csv) and record["one_hot"] is True
    assert record["models"][0]["in_features"] == 5  # x1, x2 and a 0/1 column per colour
    assert record["samples"] == 8 and (out / "eigenvalues_shrinkage_h0.5.png").exists()
    assert record["summary"][0]["max_real"] <= 1e-6  # shrinkage: -K^T K has no eigenvalue with Re λ > 0


def test_diagnose_a_saved_model_on_the_files_split_of_its_own_seed(tmp_path):
    csv = write_toy_csv(tmp_path / "toy.csv")
    split = load_table(csv, "label", seed=3, one_hot=True)
    model = StableResNet(5, 2, depth=2, block="plain", step_size=0.3, seed=0)
    fit(model, torch.tensor(split.X_train, dtype=torch.float32), torch.tensor(split.y_train), TrainConfig(epochs=3))
    path = save_model(tmp_path / "m.safetensors", model, extra={"params": {"random_state": 3}})
    result, text = run("diagnose", "--data", csv, "--target", "label", "--one-hot", "--model", path,
                       "--sigma", 0, "--epsilon", 0, "--samples", 8, "--out", tmp_path / "d")
    assert result.exit_code == 0, text
    record = json.loads((tmp_path / "d" / "summary.json").read_text())
    X_test = torch.tensor(split.X_test, dtype=torch.float32)
    expected = evaluate(model, X_test, torch.tensor(split.y_test))["accuracy"][0]
    assert record["seed"] == 3
    assert record["summary"][0]["clean_accuracy"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give exactly one of --data FILE (with --target COLUMN) or --dataset NAME"),
        (["--data", "TOY", "--target", "label", "--dataset", "wine"], "give exactly one of --data FILE"),
        (["--data", "TOY"], "--data needs --target COLUMN"),
        (["--data", "missing.csv", "--target", "label"], "missing.csv: file not found"),
        (["--data", "TOY", "--target", "nope"], "no target column 'nope'"),
        # The saved model takes 5 inputs: the file's one-hot encoding, not its 3 ordinal columns.
        (["--data", "TOY", "--target", "label", "--model", "MODEL"], "expects 5 features and 2 classes; "),
    ],
)
def test_diagnose_user_data_mistakes_give_exit_2(tmp_path, args, message):
    files = {"TOY": str(write_toy_csv(tmp_path / "toy.csv")),
             "MODEL": str(save_model(tmp_path / "m.safetensors", StableResNet(5, 2, depth=1, seed=0)))}
    result, text = run("diagnose", *[files.get(a, a) for a in args], "--depth", 1, "--epochs", 1,
                       "--out", tmp_path / "never")
    assert result.exit_code == 2, text
    assert message in " ".join(text.split())
    assert "Traceback" not in text
    assert not (tmp_path / "never").exists()


# --- the signal at initialisation ----------------------------------------------------------------

def test_initial_signal_of_a_hand_built_network():
    """Width 1, three plain blocks with K1 = a_i > 0: y_{i+1} = y_i (1 + h a_i c_i) for y_i > 0, so
    y_3 = P y_0 with P = Π (1 + h a_i c_i); logits W y_3, and ∂L/∂y_0 per row = P Σ_k W_k (p_k − e_k) / B."""
    from stableresnet.diagnostics import initial_signal

    h, a, c, W = 0.5, [1.0, 2.0, 0.5], [0.5, -0.25, 2.0], [0.7, -0.4]
    model = StableResNet(1, 2, depth=3, block="plain", step_size=h, seed=0).double()
    with torch.no_grad():
        model.field.K1.copy_(torch.tensor(a, dtype=torch.float64).view(1, 3, 1, 1))
        model.field.K2.copy_(torch.tensor(c, dtype=torch.float64).view(1, 3, 1, 1))
        model.head.weight.copy_(torch.tensor(W, dtype=torch.float64).view(1, 2, 1))
    X, y = torch.tensor([[1.0], [2.0]]), torch.tensor([1, 0])
    signal = initial_signal(model, X, y, batch_size=2)

    P = (1 + h * a[0] * c[0]) * (1 + h * a[1] * c[1]) * (1 + h * a[2] * c[2])  # 1.25 · 0.75 · 1.5
    assert P == pytest.approx(1.40625)
    assert signal.scale_ratio[0] == pytest.approx(P, rel=1e-12)  # max |y_3| / max |y_0| = 2P / 2
    gradients = []
    for x, label in ((1.0, 1), (2.0, 0)):
        logits = np.array(W) * P * x
        p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        gradients.append(P * sum(W[k] * (p[k] - (k == label)) for k in range(2)) / 2)
    assert signal.gradient_norm[0] == pytest.approx(np.hypot(*gradients), rel=1e-12)
    assert signal.state == ["ok"]
    assert torch.equal(model.field.K1.detach().flatten(), torch.tensor(a, dtype=torch.float64))  # left as it was


def test_500_shrinkage_blocks_start_collapsed_under_glorot_and_not_under_uniform():
    """y − h K1ᵀ D K1 y contracts by ~(1 − h s²) per block: Glorot's s ≈ 1.2 at width 2 crushes 500 blocks
    at h = 0.1 to ~1e-11; U(±0.05) leaves the features at their scale."""
    from stableresnet.diagnostics import initial_signal
    from stableresnet.train import fit_standardization

    data = load_dataset("circles", seed=0, n_samples=200)
    X, y = torch.tensor(data.X_train, dtype=torch.float32), torch.tensor(data.y_train)
    states = {}
    for init in ("glorot", "uniform"):
        model = StableResNet(2, 2, depth=500, block="shrinkage", step_size=0.1, seed=[0, 1, 2], init=init)
        fit_standardization(model, X, torch.arange(len(X)).expand(3, -1))
        signal = initial_signal(model, X, y, batch_size=32)
        states[init] = signal.state
        if init == "glorot":
            assert (signal.scale_ratio < 1e-8).all() and (signal.gradient_norm < 1e-8).all()
        else:
            assert ((signal.scale_ratio > 0.5) & (signal.scale_ratio <= 1)).all()  # shrinks, but slowly
    assert states == {"glorot": ["collapsed"] * 3, "uniform": ["ok"] * 3}


def test_initial_signal_takes_the_first_mini_batch_the_trainer_takes():
    """The gradient is the first training step's: the same rows, so the first step's input gradient."""
    from stableresnet.diagnostics import initial_signal
    from stableresnet.model import member_generator

    X = torch.randn(30, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = (X[:, 0] > 0).long()
    model = StableResNet(3, 2, depth=2, block="plain", step_size=0.5, seed=[4, 5]).double()
    signal = initial_signal(model, X, y, batch_size=8)
    for m, seed in enumerate((4, 5)):
        rows = torch.randperm(30, generator=member_generator(seed, "batches"))[:8]
        single = model.select_members([m]).train()
        y0 = single.embed(X[rows]).detach().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(single.flow(y0)[0][0], y[rows])
        (gradient,) = torch.autograd.grad(loss, y0)
        assert signal.gradient_norm[m] == pytest.approx(gradient.norm().item(), rel=1e-12)


def test_signal_states_at_the_thresholds():
    from stableresnet.diagnostics import signal_state

    assert [signal_state(v) for v in (1e-4, 1e-3, 1.0, 1e3, 2e3, float("inf"), float("nan"))] == \
        ["collapsed", "ok", "ok", "ok", "exploded", "exploded", "exploded"]


def test_eigenvalues_of_repeated_matrices_are_those_of_each_matrix_alone():
    """Distinct matrices are decomposed once; every matrix still gets exactly its own eigenvalues."""
    from stableresnet.diagnostics import _eigenvalues

    generator = torch.Generator().manual_seed(0)
    distinct = torch.randn(5, 6, 6, dtype=torch.float64, generator=generator)
    choice = torch.randint(0, 5, (3, 40), generator=generator)
    jacobians = distinct[choice].clone()  # (3, 40, 6, 6), most matrices repeated
    jacobians[1, 7, 2, 3] = float("inf")
    values = _eigenvalues(jacobians)
    assert values.shape == (3, 40, 6)
    for m in range(3):
        for b in range(40):
            if (m, b) == (1, 7):
                assert torch.isnan(values[m, b]).all()
            else:
                assert torch.equal(values[m, b], torch.linalg.eigvals(jacobians[m, b]))
