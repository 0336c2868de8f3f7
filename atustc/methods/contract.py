"""The method contract: what crosses the boundary between a method and the engine/harness.

A method is registered (see :mod:`atustc.methods._registry`) as a :class:`MethodSpec`: a builder
that returns a :class:`ReIDModel` given the training label spaces, a preset and an optional local
pretrained file, and a :class:`Recipe` per preset. The engine trains any ``ReIDModel`` with its
recipe; the harness scores any ``ReIDModel`` through ``embed``. Neither knows a method by name,
and a method knows nothing of the engine or the harness.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from atustc.errors import AtustcError
from atustc.scenarios import SCENARIOS  # noqa: F401 (re-exported: the heads of a six-head method follow it)

if TYPE_CHECKING:
    import torch

Family = Literal["Tr-ReID", "CC-ReID", "CM-ReID", "AT-ReID"]
Preset = Literal["tiny", "paper"]
PRESETS: tuple[str, ...] = ("tiny", "paper")


@dataclass(frozen=True)
class LabelSpace:
    """Training label spaces derived from the train table (never stored in it).

    Attributes:
        num_pids: contiguous person labels 0..num_pids-1.
        num_outfits: contiguous outfit labels over sorted (pid, clothes) pairs.
        outfit_to_pid: person label of each outfit label (length ``num_outfits``).
        num_cameras: camera labels 0..num_cameras-1 (for side-information embeddings).
    """

    num_pids: int
    num_outfits: int
    outfit_to_pid: tuple[int, ...]
    num_cameras: int

    def __post_init__(self) -> None:
        if self.num_pids < 1 or self.num_outfits < self.num_pids:
            raise AtustcError(f"LabelSpace: need num_outfits >= num_pids >= 1, got {self.num_outfits}, {self.num_pids}")
        if len(self.outfit_to_pid) != self.num_outfits:
            raise AtustcError("LabelSpace: outfit_to_pid must have num_outfits entries")


@dataclass
class Batch:
    """One batch as the engine hands it to a model.

    ``pid``/``outfit`` are contiguous training labels (-1 at inference where unknown);
    ``modality`` is 0 for RGB and 1 for IR; ``camera`` is a contiguous camera label.
    """

    images: torch.Tensor  # [B, 3, H, W] float
    pid: torch.Tensor  # [B] long
    outfit: torch.Tensor  # [B] long
    modality: torch.Tensor  # [B] long, 0 = rgb, 1 = ir
    camera: torch.Tensor  # [B] long

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)})


@dataclass(frozen=True)
class Recipe:
    """How a method is trained at one preset: optimisation, schedule, batch and augmentation.

    Validated on construction; an inconsistent recipe raises :class:`AtustcError`.
    """

    # optimiser
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.008
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = True
    no_decay_patterns: tuple[str, ...] = ("pos_embed", "cls_token", "norm", "bias")
    lr_mult: float = 1.0  # learning-rate multiplier for parameters matching lr_mult_patterns
    lr_mult_patterns: tuple[str, ...] = ()
    clip_grad_norm: float | None = None
    # schedule
    epochs: int = 120
    iters_per_epoch: int = 200
    warmup_epochs: int = 10
    warmup_start_factor: float = 0.1
    schedule: Literal["cosine", "multistep", "constant"] = "cosine"
    min_lr_factor: float = 0.002
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    step_per: Literal["epoch", "iter"] = "epoch"
    # batch
    sampler: Literal["pk_modality", "pk", "random"] = "pk_modality"
    num_identities: int = 8  # P
    num_instances: int = 8  # K
    # input and augmentation
    input_size: tuple[int, int] = (256, 128)  # (H, W)
    flip_p: float = 0.5
    pad: int = 10
    random_erasing_p: float = 0.5
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    flip_test: bool = False
    # validation during training (on the val split, flag 1); 0 = only at the end
    eval_every_epochs: int = 0
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise AtustcError(f"recipe: {msg}")

        if self.lr <= 0:
            bad(f"lr must be > 0, got {self.lr}")
        if self.epochs < 1 or self.iters_per_epoch < 1:
            bad(f"epochs and iters_per_epoch must be >= 1, got {self.epochs}, {self.iters_per_epoch}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            bad(f"warmup_epochs must be in [0, epochs], got {self.warmup_epochs}")
        if self.num_identities < 1 or self.num_instances < 1:
            bad(f"P and K must be >= 1, got {self.num_identities}x{self.num_instances}")
        if self.sampler == "pk_modality" and self.num_instances % 2:
            bad(f"pk_modality needs an even K, got {self.num_instances}")
        if any(m > self.epochs for m in self.milestones):
            bad(f"milestones must be <= epochs, got {self.milestones}")
        if len(self.input_size) != 2 or min(self.input_size) < 8:
            bad(f"input_size must be (H, W) >= 8, got {self.input_size}")

    @property
    def batch_size(self) -> int:
        return self.num_identities * self.num_instances

    @property
    def total_iters(self) -> int:
        return self.epochs * self.iters_per_epoch


@runtime_checkable
class ReIDModel(Protocol):
    """What every method's model provides (an ``nn.Module`` with these members).

    - ``head_names``: the names of the embedding heads (Uni-AT: the six scenarios; a
      single-embedding method: ``("global",)``, used for every scenario).
    - ``forward(batch)``: training forward pass; returns whatever ``loss`` needs.
    - ``loss(outputs, batch)``: a dict of scalar tensors with ``"total"`` (others are logged).
    - ``embed(batch)``: eval-mode features ``[B, H, D]``, one row per head.

    Optional members, looked up with ``getattr`` by the engine (a model without them gets the defaults):

    - ``optim_groups() -> Sequence[OptimGroup]``: parameters trained by their own optimiser
      (BoT's centre-loss centres: SGD at 0.5; CAL's clothes classifier: undecayed Adam). They are
      left out of the recipe's main optimiser. Default: none.
    - ``set_epoch(epoch: int) -> None``: called by the engine before each epoch (0-based), for
      losses that switch on at an epoch (CAL's adversarial loss from epoch 25). Default: no call.
    - ``embed_dim: int``: D of ``embed``'s ``[B, H, D]``, shown by ``atustc bench --list``
      (:mod:`atustc.methods.describe`). Default: shown as unknown.
    """

    head_names: tuple[str, ...]

    def forward(self, batch: Batch) -> object: ...

    def loss(self, outputs: object, batch: Batch) -> dict[str, torch.Tensor]: ...

    def embed(self, batch: Batch) -> torch.Tensor: ...


@dataclass(frozen=True)
class OptimGroup:
    """Parameters that a method trains with their own optimiser, beside the recipe's main one.

    Attributes:
        name: shown in logs and saved in checkpoints (``optim/<name>``).
        params: the parameters (taken out of the main optimiser).
        optimizer: ``sgd``, ``adam`` or ``adamw``.
        lr: learning rate.
        weight_decay: weight decay (0 = undecayed).
        momentum: SGD momentum.
        scheduled: follow the main schedule's learning-rate factor (warm-up, cosine, steps);
            False keeps ``lr`` constant.
        grad_scale: multiply the gradients by this before the step (BoT divides the centre
            gradients by the centre-loss weight so that the centres move at ``lr`` regardless of it).
    """

    name: str
    params: tuple[Any, ...]
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.5
    weight_decay: float = 0.0
    momentum: float = 0.0
    scheduled: bool = False
    grad_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise AtustcError(
                f"optim group {self.name!r}: optimizer must be sgd, adam or adamw, got {self.optimizer!r}"
            )
        if self.lr <= 0 or self.grad_scale <= 0:
            raise AtustcError(
                f"optim group {self.name!r}: lr and grad_scale must be > 0, got {self.lr}, {self.grad_scale}"
            )
        if not self.params:
            raise AtustcError(f"optim group {self.name!r}: no parameters")


@dataclass(frozen=True)
class MethodOption:
    """A model or loss switch of a method, set with ``--set NAME=VALUE`` and kept in ``recipe.extra``.

    The value travels as text (``config.json`` records it with the recipe, so a resumed or
    re-embedded run builds the same model); :meth:`value` checks and parses it.

    Attributes:
        name: the ``--set`` key (must not be a :class:`Recipe` field).
        default: the value when the key is not set (text).
        choices: the allowed values; empty: any text ``parse`` accepts.
        parse: text -> the value the builder receives (``str``, ``float`` …).
        help: what the option does (one line; shown in errors).
    """

    name: str
    default: str
    choices: tuple[str, ...] = ()
    parse: Callable[[str], Any] = str
    help: str = ""

    def value(self, text: object) -> Any:
        """The parsed value of ``text``.

        Raises:
            AtustcError: a value outside ``choices``, or one ``parse`` rejects.
        """
        raw = str(text).strip()
        if self.choices and raw not in self.choices:
            raise AtustcError(f"--set {self.name}={raw}: expected one of {', '.join(self.choices)}")
        try:
            return self.parse(raw)
        except (TypeError, ValueError) as exc:
            raise AtustcError(f"--set {self.name}={raw}: {self.help or exc}") from None


#: Side-information fields of the table a method can require (``MethodSpec.needs``).
SIDE_FIELDS: tuple[str, ...] = ("clothes", "camera", "modality")

#: ``build(labels, preset, pretrained)``; a method with :class:`MethodOption` s also takes ``options``
#: (``{name: parsed value}``) as a fourth argument.
Builder = Callable[..., ReIDModel]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    Attributes:
        name: registry key (``uniat``, ``transreid`` …).
        family: task family shown on the leaderboard.
        summary: one line for ``atustc bench --list``.
        build: ``build(labels, preset, pretrained)`` -> model; never touches the network.
        recipe: ``recipe(preset)`` -> :class:`Recipe`.
        needs: side-information fields of the training table the method uses beyond ``pid``
            (a subset of :data:`SIDE_FIELDS`: CAL needs ``clothes``, TransReID's SIE ``camera``); the
            engine refuses, in one line, a training table whose field is unknown (-1) or constant.
        unused_parameters: some trainable parameters get no gradient in some steps (a branch
            that is skipped); DDP then searches for them every step (``find_unused_parameters``),
            which costs time, so only such methods say so.
        scoring: set-dependent scoring (SAAI's affinity inference, which uses the gallery at
            test): ``scoring(recipe)`` gives an object with ``hook()``, an
            :data:`atustc.evaluate.ScoreHook` that replaces the protocol's metric on every ranked
            block, and ``describe()``, recorded in the eval files as ``scoring``. The harness and
            ``eval --run`` score the method's runs with it; the recipe is the run's, so
            ``--set extra.<key>`` reaches its parameters. None: the embeddings are scored as they are.
        options: the method's model/loss switches (:class:`MethodOption`), settable with ``--set``;
            build through :meth:`create` to pass them.
    """

    name: str
    family: Family
    summary: str
    build: Builder
    recipe: Callable[[str], Recipe]
    needs: tuple[str, ...] = ()
    unused_parameters: bool = False
    scoring: Callable[[Recipe], Any] | None = None
    options: tuple[MethodOption, ...] = ()

    def __post_init__(self) -> None:
        bad = sorted(set(self.needs) - set(SIDE_FIELDS))
        if bad:
            raise AtustcError(f"method {self.name!r}: needs {', '.join(bad)}; known fields: {', '.join(SIDE_FIELDS)}")
        clash = sorted({o.name for o in self.options} & {f.name for f in fields(Recipe)})
        if clash or len({o.name for o in self.options}) != len(self.options):
            raise AtustcError(f"method {self.name!r}: option names must be unique and not recipe fields ({clash})")

    def resolve_options(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``{name: value}`` of every option: ``extra[name]`` (a recipe's ``extra``) or the default, parsed.

        Raises:
            AtustcError: a value the option rejects.
        """
        extra = extra or {}
        return {o.name: o.value(extra.get(o.name, o.default)) for o in self.options}

    def create(
        self, labels: LabelSpace, preset: str, pretrained: Path | None = None, extra: Mapping[str, Any] | None = None
    ) -> ReIDModel:
        """Build the model, passing the options resolved from ``extra`` (``recipe.extra``) when the method has any."""
        if not self.options:
            return self.build(labels, preset, pretrained)
        return self.build(labels, preset, pretrained, self.resolve_options(extra))


def check_preset(preset: str) -> str:
    """The one preset check: ``preset`` if it is one of :data:`PRESETS`.

    Raises:
        AtustcError: an unknown preset, naming the known ones.
    """
    if preset not in PRESETS:
        raise AtustcError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return preset
