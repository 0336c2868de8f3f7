"""Training data: label spaces from the train table and a torch Dataset over an annotation table.

Labels are derived, never stored: person labels are contiguous over the sorted raw ``pid`` values
of the train table, outfit labels over its sorted ``(pid, clothes)`` pairs, camera labels over its
sorted raw cameras. Images are decoded with PIL and converted to RGB, so IR frames become three
identical channels, as the official code reads them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from atustc.errors import AtustcError
from atustc.methods.contract import Batch, LabelSpace


@dataclass(frozen=True)
class LabelMaps:
    """Raw-to-contiguous label maps of one train table, and the :class:`LabelSpace` they span."""

    pids: tuple[int, ...]  # sorted raw pids; label = position
    outfits: tuple[tuple[int, int], ...]  # sorted raw (pid, clothes); label = position
    cameras: tuple[int, ...]  # sorted raw cameras; label = position

    @property
    def space(self) -> LabelSpace:
        pid_label = {p: i for i, p in enumerate(self.pids)}
        return LabelSpace(
            num_pids=len(self.pids),
            num_outfits=len(self.outfits),
            outfit_to_pid=tuple(pid_label[p] for p, _ in self.outfits),
            num_cameras=len(self.cameras),
        )

    def encode(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        """Contiguous ``pid``/``outfit``/``camera`` labels and 0/1 ``modality`` of every row; -1 where unknown."""
        pid_label = {p: i for i, p in enumerate(self.pids)}
        outfit_label = {o: i for i, o in enumerate(self.outfits)}
        cam_label = {c: i for i, c in enumerate(self.cameras)}
        pids = table["pid"].to_numpy()
        clothes = table["clothes"].to_numpy()
        return {
            "pid": np.array([pid_label.get(int(p), -1) for p in pids], dtype=np.int64),
            "outfit": np.array([outfit_label.get((int(p), int(c)), -1) for p, c in zip(pids, clothes)], dtype=np.int64),
            "camera": np.array([cam_label.get(int(c), -1) for c in table["camera"].to_numpy()], dtype=np.int64),
            "modality": (table["modality"].to_numpy() == "ir").astype(np.int64),
        }

    def to_dict(self) -> dict:
        return {"pids": list(self.pids), "outfits": [list(o) for o in self.outfits], "cameras": list(self.cameras)}

    @classmethod
    def from_dict(cls, d: dict) -> LabelMaps:
        return cls(
            pids=tuple(int(p) for p in d["pids"]),
            outfits=tuple((int(p), int(c)) for p, c in d["outfits"]),
            cameras=tuple(int(c) for c in d["cameras"]),
        )


def build_label_maps(train_table: pd.DataFrame, source: str = "train table") -> LabelMaps:
    """Label maps of a train table.

    Raises:
        AtustcError: the table has no rows.
    """
    if len(train_table) == 0:
        raise AtustcError(f"{source}: no train rows (split == 'train'); nothing to train on")
    outfits = sorted({(int(p), int(c)) for p, c in zip(train_table["pid"], train_table["clothes"])})
    return LabelMaps(
        pids=tuple(sorted(int(p) for p in train_table["pid"].unique())),
        outfits=tuple(outfits),
        cameras=tuple(sorted(int(c) for c in train_table["camera"].unique())),
    )


def build_label_space(train_table: pd.DataFrame) -> LabelSpace:
    """The :class:`LabelSpace` (contiguous person/outfit/camera labels) of a train table."""
    return build_label_maps(train_table).space


def check_images(table: pd.DataFrame, root: Path, what: str = "table") -> None:
    """Fail early, naming the first image of ``table`` that is missing under ``root``.

    Raises:
        AtustcError: the root is not a folder, or an image file is missing.
    """
    if not root.is_dir():
        raise AtustcError(f"image root {root} is not a folder (pass --root)")
    base = os.fspath(root)
    for rel in table["relpath"]:
        if not os.path.isfile(os.path.join(base, rel)):
            raise AtustcError(f"{what}: image {rel} not found under {root}")


def load_image(path: Path) -> Image.Image:
    """Decode an image as 3-channel RGB (IR frames included).

    Raises:
        AtustcError: missing or unreadable file, named.
    """
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise AtustcError(f"image {path} not found") from None
    except OSError as exc:
        raise AtustcError(f"image {path} cannot be decoded ({exc})") from None


class TableDataset(torch.utils.data.Dataset):
    """Images of an annotation table with their training labels.

    Items are looked up either by row index (test transform) or by ``(row, seed)`` pairs, where
    ``seed`` drives the random augmentation of that one sample; the samplers hand out such pairs so
    that augmentation is reproducible whatever the number of loader workers, and after a resume.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        root: Path,
        labels: LabelMaps,
        transform: Callable[..., torch.Tensor],
    ) -> None:
        self.paths = [os.path.join(os.fspath(root), rel) for rel in table["relpath"]]
        self.labels = labels.encode(table)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int, int, int, int]:
        if isinstance(key, tuple):
            index, seed = key
            image = self.transform(load_image(Path(self.paths[index])), torch.Generator().manual_seed(int(seed)))
        else:
            index = key
            image = self.transform(load_image(Path(self.paths[index])))
        lab = self.labels
        return (
            image,
            int(lab["pid"][index]),
            int(lab["outfit"][index]),
            int(lab["modality"][index]),
            int(lab["camera"][index]),
        )


def collate(items: Sequence[tuple[torch.Tensor, int, int, int, int]]) -> tuple[torch.Tensor, ...]:
    """Stack dataset items into ``(images, pid, outfit, modality, camera)`` tensors."""
    images, pid, outfit, modality, camera = zip(*items)
    return (
        torch.stack(images),
        torch.tensor(pid, dtype=torch.long),
        torch.tensor(outfit, dtype=torch.long),
        torch.tensor(modality, dtype=torch.long),
        torch.tensor(camera, dtype=torch.long),
    )


def to_batch(tensors: Sequence[torch.Tensor], device: torch.device) -> Batch:
    """A :class:`Batch` on ``device`` from collated tensors."""
    images, pid, outfit, modality, camera = (t.to(device, non_blocking=True) for t in tensors)
    return Batch(images=images, pid=pid, outfit=outfit, modality=modality, camera=camera)
