"""Shared test fixtures of the engine tests: a tiny registered method and a tiny AT-USTC-like dataset.

``tiny_spec()`` is a method small enough to train in seconds on the CPU (one conv, a linear
embedding, a cosine classifier with cross-entropy); it has no batch norm and no dropout, so a
2-process DDP run computes the same updates as a 1-process run. ``make_dataset`` writes a tree of
32x16 images whose top rows carry an identity colour and the rest an outfit colour (IR images
are the grey version), plus a table, its manifest and a resplit split folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from atustc.methods.contract import Batch, LabelSpace, MethodSpec, Recipe

METHOD = "engine-test-net"


class TinyNet(torch.nn.Module):
    head_names = ("global",)

    def __init__(self, labels: LabelSpace, dim: int = 16) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.embedding = torch.nn.Linear(8 * 4 * 2, dim)
        self.classifier = torch.nn.Linear(dim, labels.num_pids, bias=False)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(images))
        x = torch.nn.functional.adaptive_avg_pool2d(x, (4, 2)).flatten(1)
        return self.embedding(x)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.classifier(torch.nn.functional.normalize(self.features(batch.images), dim=1)) * 10

    def loss(self, outputs: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        ce = torch.nn.functional.cross_entropy(outputs, batch.pid)
        return {"total": ce, "ce": ce}

    def embed(self, batch: Batch) -> torch.Tensor:
        return self.features(batch.images)[:, None, :]


def tiny_recipe(preset: str) -> Recipe:
    return Recipe(
        lr=0.1,
        epochs=3,
        iters_per_epoch=4,
        warmup_epochs=1,
        step_per="iter",  # warm-up within the first epoch, then cosine, as a 3-epoch run needs
        num_identities=4,
        num_instances=4,
        input_size=(32, 16),
        pad=2,
        eval_every_epochs=1,
        clip_grad_norm=5.0,
        lr_mult=2.0,
        lr_mult_patterns=("classifier",),
    )


def tiny_spec() -> MethodSpec:
    return MethodSpec(
        name=METHOD,
        family="Tr-ReID",
        summary="engine test network",
        build=lambda labels, preset, pretrained: TinyNet(labels),
        recipe=tiny_recipe,
    )


def make_dataset(base: Path, ids: int = 16, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write images, ``table.parquet`` (+ manifest) and ``split/`` under ``base``; return (root, table, split)."""
    import pandas as pd

    from atustc.io import write_json_atomic
    from atustc.split import make_split, write_split
    from atustc.table import manifest_path, save_table

    rng = np.random.default_rng(seed)
    root = base / "images"
    rows = []
    for pid in range(1, ids + 1):
        head = rng.integers(0, 256, 3)
        for clothes in (1, 2):
            body = rng.integers(0, 256, 3)
            for cam in (1, 2, 9, 10):
                for frame in range(4):
                    img = np.empty((32, 16, 3), dtype=np.float64)
                    img[:10] = head
                    img[10:] = body
                    img += rng.normal(0, 20, img.shape)
                    if cam > 8:
                        img[:] = img.mean(axis=2, keepdims=True)
                    rel = f"p{pid:03d}-d01-c{clothes:02d}/cam{cam:02d}-f0-{frame:04d}.png"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / rel)
                    rows.append(("atustc", rel, pid, clothes, cam, "ir" if cam > 8 else "rgb", 1, frame, -1, "unused"))
    cols = ["dataset", "relpath", "pid", "clothes", "camera", "modality", "date", "frame", "flag", "split"]
    table_path = base / "table.parquet"
    table = save_table(pd.DataFrame(rows, columns=cols), table_path)
    write_json_atomic(manifest_path(table_path), {"root": str(root.resolve())})
    split_dir = base / "split"
    write_split(make_split(table, "resplit", seed=0, root=root), split_dir)
    return root, table_path, split_dir
