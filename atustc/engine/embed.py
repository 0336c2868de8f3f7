"""Feature extraction: a trained run's model over an annotation table, as :class:`~atustc.features.Features`.

Images get the test transform (resize, normalise); with ``recipe.flip_test`` the features of the
image and of its mirror are averaged. Under torchrun each rank embeds every ``world``-th row and
the rows are gathered on every rank.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from atustc.engine.data import LabelMaps, TableDataset, check_images, collate, to_batch
from atustc.engine.distributed import DistInfo, gather_rows
from atustc.engine.step import autocast_context
from atustc.engine.transforms import build_transforms
from atustc.errors import AtustcError
from atustc.features import Features
from atustc.methods import Recipe
from atustc.richprogress import progress_bar


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    table: pd.DataFrame,
    root: Path,
    recipe: Recipe,
    labels: LabelMaps,
    device: torch.device,
    batch_size: int,
    *,
    amp: str = "off",
    num_workers: int = 0,
    info: DistInfo | None = None,
    progress: bool = False,
) -> Features:
    """Embed every row of ``table`` with ``model.embed`` (model in eval mode; restored by the caller).

    Returns:
        Features with one row per table row, in table order, and the model's head names.
    """
    info = info or DistInfo()
    _, test_tf = build_transforms(recipe)
    local = table.iloc[info.rank :: info.world]
    loader = torch.utils.data.DataLoader(
        TableDataset(local, root, labels, test_tf),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
    )
    chunks: list[np.ndarray] = []
    with progress_bar("embed", len(local), progress and info.is_main) as advance:
        for tensors in loader:
            batch = to_batch(tensors, device)
            with autocast_context(device, amp):
                feat = model.embed(batch).float()
                if recipe.flip_test:
                    batch.images = batch.images.flip(-1)
                    feat = (feat + model.embed(batch).float()) / 2
            chunks.append(feat.cpu().numpy())
            advance(len(tensors[0]))
    heads = tuple(model.head_names)
    if chunks:
        feats = np.concatenate(chunks)
    else:
        feats = np.zeros((0, len(heads), 1), dtype=np.float32)
    feats = gather_rows(feats.astype(np.float32), info)
    return Features(relpath=table["relpath"].to_numpy().astype(str), heads=heads, feat=feats)


def embed_run(
    run_dir: str | os.PathLike[str],
    table: pd.DataFrame | str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    checkpoint: Literal["best", "last"] = "best",
    batch_size: int | None = None,
    progress: bool = True,
    device: str = "auto",
) -> Features:
    """Embed a table's images with a trained run.

    Args:
        run_dir: a run folder written by :func:`~atustc.engine.train_run`.
        table: an annotation table or its parquet path (every row is embedded).
        root: image root; default (:func:`atustc.table.image_root`): for a table path, its split's
            or manifest's root; else the root the run was trained on.
        checkpoint: ``best`` (selected on validation) or ``last``.
        batch_size: images per batch (default: the run's ``eval_batch_size``).
        progress: show a progress bar.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        AtustcError: not a run folder, missing/corrupt checkpoint, unknown method, missing image.
    """
    from atustc.engine.checkpoint import load_checkpoint, load_weights
    from atustc.engine.config import import_plugins, recipe_from_dict
    from atustc.engine.distributed import env_info, resolve_device
    from atustc.engine.run import RunFolder
    from atustc.methods import get_method
    from atustc.table import image_root, load_table

    if checkpoint not in ("best", "last"):
        raise AtustcError(f"--checkpoint {checkpoint!r}: expected best or last")
    run = RunFolder(run_dir)
    cfg = run.read_config()
    import_plugins(cfg.get("plugins", []))
    spec = get_method(cfg["method"])
    recipe = recipe_from_dict(cfg["recipe"], str(run.config))
    labels = LabelMaps.from_dict(cfg["labels"])
    df = table if isinstance(table, pd.DataFrame) else load_table(table)
    table_path = None if isinstance(table, pd.DataFrame) else table
    root_path = image_root(root, table_path=table_path, run_root=run.trained_root())
    check_images(df, root_path)
    path = run.best if checkpoint == "best" else run.last
    if not path.is_file():
        state = run.read_status().get("state")
        other = "last" if checkpoint == "best" else "best"
        raise AtustcError(f"run {run.path} has no checkpoints/{path.name} (state: {state}); try --checkpoint {other}")
    ckpt = load_checkpoint(path, kind=checkpoint)
    dev = resolve_device(device, env_info())
    model = spec.create(labels.space, cfg["preset"], None, recipe.extra)
    load_weights(model, ckpt["model"], path)
    model.to(dev).eval()
    amp = cfg.get("amp", "off")
    if amp == "fp16" and dev.type != "cuda":
        amp = "off"  # a run trained with fp16 on a GPU, embedded on the CPU
    return extract_features(
        model,
        df.reset_index(drop=True),
        root_path,
        recipe,
        labels,
        dev,
        batch_size or int(cfg["engine"]["eval_batch_size"]),
        amp=amp,
        num_workers=int(cfg["engine"]["num_workers"]),
        progress=progress,
    )


def run_scoring(run_dir: str | os.PathLike[str]) -> Any | None:
    """The set-dependent scoring of a run's method (:attr:`MethodSpec.scoring` built from the run's
    recipe), or None when its embeddings are scored as they are (or the folder records no method:
    :func:`embed_run` reports that)."""
    from atustc.engine.config import import_plugins, recipe_from_dict
    from atustc.engine.run import RunFolder
    from atustc.methods import get_method

    run = RunFolder(run_dir)
    cfg = run.read_config() if run.config.is_file() else {}
    if "method" not in cfg:
        return None
    import_plugins(cfg.get("plugins", []))
    spec = get_method(cfg["method"])
    return spec.scoring(recipe_from_dict(cfg["recipe"])) if spec.scoring is not None else None
