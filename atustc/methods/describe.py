"""The size of a registered method's model at a preset, counted without computing any weight.

The model is built on PyTorch's ``meta`` device (shapes only: no memory, no initialisation, no
checkpoint; a ViT-B or two ResNet-50s take well under a second) on two label spaces that differ
in every size. A parameter whose shape is the same in both does not depend on the training
labels (backbone, necks, reductions, fusion heads); one that changes along a single dimension is
label-sized (identity classifiers, BoT's centres, CAL's clothes classifier, TransReID's SIE) and
is counted per person, per outfit or per camera. ``atustc bench --list`` prints both, so that the
backbone-and-neck count can be checked against a published architecture (BoT: a 23.5 M
ResNet-50, a 4,096-parameter BNNeck, 2,048 + 2,048 per identity for the classifier and the
centres) whatever the dataset's identity count.

Every parameter the model holds is counted, including those used only at training (AIM's
clothes-bias branch and fusion head) and frozen ones (the BNNeck's zero bias).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from atustc.errors import AtustcError
from atustc.methods.contract import LabelSpace, MethodSpec

#: The two label spaces the model is built on (every size differs between them).
_SPACES: tuple[LabelSpace, LabelSpace] = (
    LabelSpace(num_pids=5, num_outfits=11, outfit_to_pid=tuple(i % 5 for i in range(11)), num_cameras=3),
    LabelSpace(num_pids=6, num_outfits=13, outfit_to_pid=tuple(i % 6 for i in range(13)), num_cameras=4),
)
LABEL_KINDS: tuple[str, ...] = ("pid", "outfit", "camera")


@dataclass(frozen=True)
class ModelSize:
    """Parameter count and embedding shape of a method's model at one preset.

    Attributes:
        method: the method name.
        preset: the preset it was built at.
        params: parameters that do not depend on the label spaces.
        per_pid: parameters added by each training identity.
        per_outfit: parameters added by each training outfit.
        per_camera: parameters added by each camera.
        heads: the embedding heads (``H``).
        embed_dim: ``D`` of the ``[B, H, D]`` embedding (None: the model does not declare it).
    """

    method: str
    preset: str
    params: int
    per_pid: int
    per_outfit: int
    per_camera: int
    heads: tuple[str, ...]
    embed_dim: int | None

    def total(self, labels: LabelSpace) -> int:
        """All parameters of the model built on ``labels``."""
        return (
            self.params
            + self.per_pid * labels.num_pids
            + self.per_outfit * labels.num_outfits
            + self.per_camera * labels.num_cameras
        )


def _label_sizes(labels: LabelSpace) -> tuple[int, int, int]:
    return labels.num_pids, labels.num_outfits, labels.num_cameras


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the builders' warnings (e.g. "randomly initialised") while they build shapes only."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def model_size(spec: MethodSpec, preset: str) -> ModelSize:
    """Count ``spec``'s parameters at ``preset`` on the meta device (see the module docstring).

    Raises:
        AtustcError: a parameter changes with the labels in a way that is not one label-sized
            dimension (e.g. ``2 * num_pids`` rows), or the two builds name different parameters.
    """
    import torch

    shapes: list[dict[str, tuple[int, ...]]] = []
    with _quiet(), torch.device("meta"):
        for labels in _SPACES:
            model = spec.create(labels, preset)
            shapes.append({name: tuple(p.shape) for name, p in model.named_parameters()})
    if shapes[0].keys() != shapes[1].keys():
        raise AtustcError(f"method {spec.name!r}: the set of parameters changes with the label space")
    sizes = tuple(zip(_label_sizes(_SPACES[0]), _label_sizes(_SPACES[1])))
    fixed, per = 0, dict.fromkeys(LABEL_KINDS, 0)
    for name, shape in shapes[0].items():
        numel = _numel(shape)
        changed = [(a, b) for a, b in zip(shape, shapes[1][name]) if a != b]
        if not changed:
            fixed += numel
            continue
        if len(changed) != 1 or changed[0] not in sizes:
            raise AtustcError(
                f"method {spec.name!r}: parameter {name} {shape} does not scale with one label space "
                f"(persons, outfits or cameras)"
            )
        kind = LABEL_KINDS[sizes.index(changed[0])]
        per[kind] += numel // changed[0][0]
    return ModelSize(
        method=spec.name, preset=preset, params=fixed, per_pid=per["pid"], per_outfit=per["outfit"],
        per_camera=per["camera"], heads=tuple(model.head_names), embed_dim=getattr(model, "embed_dim", None),
    )  # fmt: skip


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def format_size(size: ModelSize) -> tuple[str, str, str]:
    """Three cells for a listing: ``23.51M``, ``+4,096/id`` (per-label parts), ``1x2,048``."""
    per = [(size.per_pid, "id"), (size.per_outfit, "outfit"), (size.per_camera, "camera")]
    extra = ", ".join(f"+{n:,}/{kind}" for n, kind in per if n) or "-"
    dim = "?" if size.embed_dim is None else f"{size.embed_dim:,}"
    return f"{size.params / 1e6:.2f}M", extra, f"{len(size.heads)}x{dim}"
