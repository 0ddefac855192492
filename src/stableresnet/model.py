"""The stabilised ResNet: input standardisation, optional lift, `depth` residual blocks, linear head.

One module holds M independent networks (members) of the same shape; each member
has its own step size h, its own seed and its own parameters, stacked along a
leading member axis. A single network is simply M = 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .blocks import ACTIVATIONS, BATCH_NORM_EPS, BATCH_NORM_MOMENTUM, INTEGRATORS, VECTOR_FIELDS, glorot_uniform_
from .errors import ConfigError
from .init import DEFAULT_INIT, parse_init
from .step_size import STEP_SIZE_POLICIES


# Independent random streams per member seed. Drawing every block's K1 from its own
# stream makes a seed give the same initial K1 for every block type (paired design).
STREAMS = {"lift": 0, "K1": 1, "K2": 2, "head": 3, "batches": 4}


def member_generator(seed: int, stream: str) -> torch.Generator:
    """A torch generator for one named stream of one member seed (numpy SeedSequence spawning)."""
    state = np.random.SeedSequence(seed, spawn_key=(STREAMS[stream],)).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _as_member_list(value, name: str, kind: type) -> list:
    values = list(value) if isinstance(value, (list, tuple, np.ndarray, torch.Tensor)) else [value]
    try:
        return [kind(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a {kind.__name__} or a list of them; got {value!r}") from None


class MemberLinear(nn.Module):
    """M independent affine maps, y @ Wᵀ + b, weight (M, out, in); Glorot-uniform init, zero bias."""

    def __init__(self, n_members: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_members, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(n_members, 1, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight.transpose(1, 2))


class StableResNet(nn.Module):
    r"""ResNet whose blocks are explicit ODE steps :math:`y_{i+1} = y_i + h\,F(y_i)` (Zhang & Wynter 2018).

    Parameters
    ----------
    in_features, n_classes : int
        Input width and number of classes.
    depth : int
        Number of residual blocks (≥ 1).
    width : int or None
        Feature width inside the blocks. ``None`` means ``in_features`` (no lift, as in
        the paper); otherwise a linear lift maps the input to ``width`` first.
    block : {"plain", "shrinkage", "batchnorm", "batchnorm-preact", "antisymmetric", "hamiltonian"}
        Vector field of every block (``blocks.VECTOR_FIELDS``: eqs. 7, 8, He et al.'s
        batch-norm block and its pre-activation form, Haber & Ruthotto's antisymmetric and Chang et al.'s
        two-stream Hamiltonian field; the last needs an even width).
    step_size : float or sequence of float
        h > 0; h = 1 with ``block="plain"`` is the vanilla ResNet. A sequence gives one
        member per value.
    activation : {"relu", "tanh"}
    integrator : {"euler", "heun", "midpoint", "rk4", "leapfrog"}
        Step rule (``blocks.INTEGRATORS``); leapfrog needs a two-stream field.
    seed : int or sequence of int
        Member seeds; all initial parameters and (in training) mini-batch orders flow
        from them. ``step_size`` and ``seed`` broadcast against each other.
    step_size_policy : {"fixed", "learnable", "adaptive"}
        How block i's h_i follows from h (``step_size.STEP_SIZE_POLICIES``): h_i = h (the
        paper), trained in (0, h_max], or min(h, 1/ρ̂_i) from the Jacobian's spectral radius.
    max_step_size : float, sequence of float or None
        h_max of the learnable policy, > h; ``None`` means 2h.
    batch_norm_momentum, batch_norm_eps : float
        The batch-norm block's running-statistics momentum in (0, 1] and ε > 0
        (``blocks.BatchNorm``); PyTorch's 0.1 and 1e-5 by default, Keras' are 0.01 and 1e-3.
        Other blocks ignore them.
    init : str
        How the blocks' K1 and K2 are drawn: ``"NAME"`` or ``"NAME:SCALE"`` with NAME one of
        ``stableresnet.init.INITIALIZERS`` (``glorot``, ``uniform``, ``normal``, ``depth-scaled``).
        Glorot-uniform by default; the paper does not state its initialiser (``stableresnet.init``).

    Notes
    -----
    The blocks' parameters live in ``self.field``, stacked (M, depth, ...); block i is
    ``y <- step_rule.step(F_i, y, h_i)`` with h_i from ``step_policy``, forward Euler
    ``y + h F_i(y)`` by default.

    The lift and head weights are Glorot-uniform (Keras' default), the blocks' weights follow
    ``init``, biases are zero, batch-norm scale 1 and shift 0. Inputs are standardised by the buffers
    ``input_mean`` and ``input_scale`` (identity until a trainer fits them).

    Examples
    --------
    >>> model = StableResNet(in_features=2, n_classes=2, depth=3, step_size=0.1, seed=0)
    >>> logits, trajectory = model(torch.zeros(5, 2), return_trajectory=True)
    >>> tuple(logits.shape), tuple(trajectory.shape)
    ((5, 2), (4, 5, 2))
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        depth: int,
        width: int | None = None,
        block: str = "plain",
        step_size: float | Sequence[float] = 1.0,
        activation: str = "relu",
        integrator: str = "euler",
        seed: int | Sequence[int] = 0,
        step_size_policy: str = "fixed",
        max_step_size: float | Sequence[float] | None = None,
        batch_norm_momentum: float = BATCH_NORM_MOMENTUM,
        batch_norm_eps: float = BATCH_NORM_EPS,
        init: str = DEFAULT_INIT,
    ):
        super().__init__()
        initializer = parse_init(init)
        width = in_features if width is None else width
        step_sizes = _as_member_list(step_size, "step_size", float)
        seeds = _as_member_list(seed, "seed", int)
        _validate(in_features, n_classes, depth, width, block, step_sizes, activation, integrator, seeds)
        n_members = max(len(step_sizes), len(seeds))
        step_sizes = step_sizes * n_members if len(step_sizes) == 1 else step_sizes
        seeds = seeds * n_members if len(seeds) == 1 else seeds
        max_step_sizes = member_max_step_sizes(max_step_size, step_sizes, step_size_policy, n_members)
        check_batch_norm(batch_norm_momentum, batch_norm_eps)

        self.in_features, self.n_classes, self.depth, self.width = in_features, n_classes, depth, width
        self.block, self.activation, self.integrator = block, activation, integrator
        self.step_size_policy = step_size_policy
        self.seeds = tuple(seeds)
        self.n_members = n_members
        self.register_buffer("step_size", torch.tensor(step_sizes).view(n_members, 1, 1))
        self.register_buffer("input_mean", torch.zeros(n_members, 1, in_features))
        self.register_buffer("input_scale", torch.ones(n_members, 1, in_features))
        self.lift = MemberLinear(n_members, in_features, width) if width != in_features else None
        self.step_rule = INTEGRATORS[integrator]()
        self.batch_norm_momentum, self.batch_norm_eps = float(batch_norm_momentum), float(batch_norm_eps)
        norm = ({"momentum": self.batch_norm_momentum, "eps": self.batch_norm_eps}
                if VECTOR_FIELDS[block].batch_normalized else {})
        self.field = VECTOR_FIELDS[block](n_members, depth, width, activation, **norm)
        self.step_policy = STEP_SIZE_POLICIES[step_size_policy](
            self.step_size.view(-1), torch.tensor(max_step_sizes), depth)
        self.head = MemberLinear(n_members, width, n_classes)
        self.init = init.strip()
        self._init_weights(initializer)

    def config(self) -> dict:
        """The constructor arguments that rebuild this model (used when saving). ``init`` is left out at
        its default, so a model file or training checkpoint of a Glorot model is what it was before
        the option existed."""
        config = {
            "in_features": self.in_features,
            "n_classes": self.n_classes,
            "depth": self.depth,
            "width": self.width,
            "block": self.block,
            "step_size": self.step_size.flatten().tolist(),
            "activation": self.activation,
            "integrator": self.integrator,
            "seed": list(self.seeds),
            "step_size_policy": self.step_size_policy,
            "max_step_size": self.step_policy.max_step_size.flatten().tolist(),
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_eps": self.batch_norm_eps,
        }
        return config if self.init == DEFAULT_INIT else {**config, "init": self.init}

    def select_members(self, members: Sequence[int]) -> StableResNet:
        """A new model of the listed members (indices, in that order): the same networks, a smaller ensemble.

        Every parameter and buffer is stacked along a member axis (the first; batch-norm running
        statistics are stored (depth, M, d), so their second), which is indexed here.
        """
        index = torch.as_tensor(list(members), dtype=torch.long)
        if index.numel() == 0 or index.min() < 0 or index.max() >= self.n_members:
            raise ConfigError(f"members must be a non-empty list of indices in [0, {self.n_members - 1}]; "
                              f"got {list(members)}")
        config = self.config()
        for key in ("step_size", "seed", "max_step_size"):
            config[key] = [config[key][i] for i in index.tolist()]
        subset = StableResNet(**config).to(device=self.step_size.device, dtype=self.step_size.dtype)
        state = {name: tensor.index_select(1 if "running_" in name else 0, index.to(tensor.device))
                 for name, tensor in self.state_dict().items()}
        subset.load_state_dict(state, strict=True)
        return subset.train(self.training)

    def block_step_sizes(self) -> torch.Tensor:
        """The step size h_i of every block in evaluation mode, shape (M, depth).

        Fixed: h everywhere; learnable: the trained h_i; adaptive: the running average
        of the training batches' h_i.
        """
        return self.step_policy.block_step_sizes(self.step_size)

    def _init_weights(self, initializer) -> None:
        streams = {name: [member_generator(s, name) for s in self.seeds] for name in ("lift", "K1", "K2", "head")}
        if self.lift is not None:
            glorot_uniform_(self.lift.weight, streams["lift"])
        self.field.init_weights(streams["K1"], streams["K2"], initializer)
        glorot_uniform_(self.head.weight, streams["head"])

    def _members(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return x.unsqueeze(0).expand(self.n_members, -1, -1)
        if x.dim() == 3 and x.shape[0] == self.n_members:
            return x
        raise ConfigError(
            f"input must have shape (batch, {self.in_features}) or ({self.n_members}, batch, {self.in_features}); "
            f"got {tuple(x.shape)}"
        )

    def forward(self, x: torch.Tensor, return_trajectory: bool = False):
        """Logits, and optionally the features after every block.

        Parameters
        ----------
        x : tensor (batch, in_features), shared by all members, or (M, batch, in_features).
        return_trajectory : bool
            Also return the trajectory y_0, ..., y_depth (layer 0 is the input of the first
            block, after standardisation and lift), shape (depth + 1, M, batch, width).

        Returns
        -------
        logits : (M, batch, n_classes). A one-member model fed a 2-D input drops the member
            axis from the logits and the trajectory: (batch, n_classes) and
            (depth + 1, batch, width).
        """
        squeeze = x.dim() == 2 and self.n_members == 1
        logits, trajectory = self.flow(self.embed(x), return_trajectory)
        if squeeze:
            logits = logits[0]
        if not return_trajectory:
            return logits
        return logits, trajectory[:, 0] if squeeze else trajectory

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Layer 0, y_0: the input standardised and lifted, (M, batch, width); x as in `forward`."""
        y = (self._members(x) - self.input_mean) / self.input_scale
        return self.lift(y) if self.lift is not None else y

    def flow(self, y: torch.Tensor, return_trajectory: bool = False):
        """The blocks and the head from layer 0: (logits (M, batch, n_classes), trajectory or None).

        Block i is ``y <- step_rule.step(F_i, y, h_i)``, forward Euler y + h_i F_i(y) (eq. 5) by
        default; the trajectory y_0, ..., y_depth is stacked (depth + 1, M, batch, width).
        """
        trajectory = [y]
        for index, layer in enumerate(self.field.layers()):
            def field(z, layer=layer, index=index):
                return self.field(z, layer, index)

            def probe(z, layer=layer, index=index):  # F_i for the step-size policy: no statistics update
                with self.field.frozen_statistics():
                    return self.field(z, layer, index)

            y = self.step_rule.step(field, y, self.step_policy(probe, y, index, self.step_size))
            if return_trajectory:
                trajectory.append(y)
        return self.head(y), torch.stack(trajectory) if return_trajectory else None


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}; got {value!r}")


def _validate(in_features, n_classes, depth, width, block, step_sizes, activation, integrator, seeds) -> None:
    _positive_int(in_features, "in_features")
    _positive_int(n_classes, "n_classes", 2)
    check_network(depth, width, block, step_sizes, activation, integrator)
    if len(step_sizes) > 1 and len(seeds) > 1 and len(step_sizes) != len(seeds):
        raise ConfigError(f"got {len(step_sizes)} step sizes but {len(seeds)} seeds; give one of them or equal counts")


def check_network(depth, width, block, step_sizes, activation, integrator) -> None:
    """The checks of a network's settings that need no data: every surface's (``spec.NetworkSpec``) and
    the model's own. ``width`` None (the number of input features) is checked once that is known."""
    _positive_int(depth, "depth")
    if width is not None:
        _positive_int(width, "width")
    for name, value, registry in (
        ("block", block, VECTOR_FIELDS),
        ("activation", activation, ACTIVATIONS),
        ("integrator", integrator, INTEGRATORS),
    ):
        if value not in registry:
            raise ConfigError(f"unknown {name} {value!r}; expected one of {sorted(registry)}")
    if not step_sizes:
        raise ConfigError("step_size must hold at least one value")
    for h in step_sizes:
        if not np.isfinite(h) or h <= 0:
            raise ConfigError(f"step_size h must be a finite number > 0; got {h!r}")
    if INTEGRATORS[integrator].needs_separable_streams and not VECTOR_FIELDS[block].separable_streams:
        two_stream = sorted(name for name, field in VECTOR_FIELDS.items() if field.separable_streams)
        raise ConfigError(f"integrator {integrator!r} needs a two-stream block ({two_stream}); got {block!r}")
    if VECTOR_FIELDS[block].separable_streams and width is not None and width % 2:
        raise ConfigError(f"the {block} block needs an even width (two streams of width/2); got width {width}")


def check_batch_norm(momentum, eps) -> None:
    for name, value in (("batch_norm_momentum", momentum), ("batch_norm_eps", eps)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not np.isfinite(value):
            raise ConfigError(f"{name} must be a finite number; got {value!r}")
    if not 0 < momentum <= 1:
        raise ConfigError(f"batch_norm_momentum must be in (0, 1] (PyTorch's sense: the new batch's weight); "
                          f"got {momentum!r}")
    if eps <= 0:
        raise ConfigError(f"batch_norm_eps must be > 0; got {eps!r}")


def member_max_step_sizes(max_step_size, step_sizes: list[float], policy: str, n_members: int) -> list[float]:
    """h_max per member: given (one value or one per member) or 2h; checked against h."""
    if policy not in STEP_SIZE_POLICIES:
        raise ConfigError(f"unknown step_size_policy {policy!r}; expected one of {sorted(STEP_SIZE_POLICIES)}")
    if max_step_size is None:
        return [2 * h for h in step_sizes]
    bounds = _as_member_list(max_step_size, "max_step_size", float)
    if len(bounds) not in (1, n_members):
        raise ConfigError(f"got {len(bounds)} max_step_size values for {n_members} members; give one or one each")
    bounds = bounds * n_members if len(bounds) == 1 else bounds
    for bound, h in zip(bounds, step_sizes):
        if not np.isfinite(bound) or bound <= 0:
            raise ConfigError(f"max_step_size must be a finite number > 0; got {bound!r}")
        if policy == "learnable" and bound <= h:
            raise ConfigError(f"max_step_size must exceed step_size for the learnable policy; got {bound!r} ≤ {h!r}")
    return bounds
