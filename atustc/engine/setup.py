"""Resolve and check a training request before anything is written (:func:`prepare`).

Method, preset, overrides, data, the fit of the batch plan, images on disk and the run folder are
all checked here, so that bad input fails with one clear line and nothing on disk changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from atustc.engine.checkpoint import load_checkpoint
from atustc.engine.config import EngineConfig, apply_overrides, import_plugins, recipe_from_dict, recipe_to_dict
from atustc.engine.data import LabelMaps, build_label_maps, check_images
from atustc.engine.distributed import env_info, resolve_device
from atustc.engine.request import AMP_MODES, TrainRequest
from atustc.engine.samplers import BatchPlan, choose_sampler
from atustc.errors import AtustcError
from atustc.methods import MethodSpec, Recipe, get_method
from atustc.runfolder import RunFolder
from atustc.split.protocols import SplitProtocols

#: Fewest validation identities that ``best.pt`` is selected on; below it best.pt is the last weights.
MIN_SELECTION_IDS = 2


@dataclass
class TrainSetup:
    """Everything a run needs, resolved and checked; nothing written yet."""

    request: TrainRequest
    spec: MethodSpec
    recipe: Recipe
    engine: EngineConfig
    table_hash: str
    split_hash: str
    root: Path
    train: pd.DataFrame
    val: pd.DataFrame
    labels: LabelMaps
    plan: BatchPlan
    device: torch.device
    run: RunFolder
    resume: bool
    val_protocol: str  # the split's validation protocol (split.json; AT-USTC's for older splits)
    val_note: str | None = None  # why there is no model selection, if there is none (validation may still be logged)
    data_notes: tuple[str, ...] = ()  # how the recipe was fitted to the train table (e.g. the sampler on RGB-only data)
    checkpoint: dict[str, Any] | None = None  # last.pt, read and checked before anything is written
    dataset: str = "atustc"  # the split's dataset (split.json)
    protocols: dict[str, Any] | None = None  # the split's protocols record (split.json), for the leaderboard

    @property
    def preset(self) -> str:
        return self.request.preset

    @property
    def seed(self) -> int:
        return self.request.seed

    @property
    def amp(self) -> str:
        return self.request.amp

    def config(self, world: int) -> dict[str, Any]:
        """The resolved config written to ``config.json``."""
        r = self.request
        return {
            "method": self.spec.name,
            "family": self.spec.family,
            "preset": r.preset,
            "seed": r.seed,
            "table": r.table.resolve().as_posix(),
            "table_hash": self.table_hash,
            "split": r.split.resolve().as_posix(),
            "split_hash": self.split_hash,
            "dataset": self.dataset,
            "protocols": self.protocols,
            "root": self.root.resolve().as_posix(),
            "pretrained": None if r.pretrained is None else r.pretrained.resolve().as_posix(),
            "device": self.device.type,
            "amp": r.amp,
            "compile": r.compile,
            "world_size": world,
            "plugins": list(r.plugins),
            "overrides": {k: str(v) for k, v in r.overrides.items()},
            "recipe": recipe_to_dict(self.recipe),
            "engine": dataclasses.asdict(self.engine),
            "labels": self.labels.to_dict(),
            "label_space": {
                "num_pids": self.labels.space.num_pids,
                "num_outfits": self.labels.space.num_outfits,
                "num_cameras": self.labels.space.num_cameras,
            },
            "train_images": len(self.train),
            "val_images": len(self.val),
        }


def prepare(request: TrainRequest, world: int = 1) -> TrainSetup:
    """Resolve and check a training run without writing anything.

    Args:
        request: the run asked for.
        world: the number of processes that will train it.

    Raises:
        AtustcError: any bad input (the message names it).
    """
    from atustc.methods.contract import check_preset
    from atustc.split import load_split_for
    from atustc.table import table_hash

    r = request
    import_plugins(r.plugins)
    spec = get_method(r.method)
    check_preset(r.preset)
    if r.amp not in AMP_MODES:
        raise AtustcError(f"--amp {r.amp!r}: expected off, bf16 or fp16")
    dev = resolve_device(r.device, env_info())
    if r.amp == "fp16" and dev.type != "cuda":
        raise AtustcError("--amp fp16 needs a GPU (its gradient scaler is CUDA-only); use --amp bf16 on the CPU")
    recipe, engine = apply_overrides(spec.recipe(r.preset), EngineConfig(), dict(r.overrides), spec.options)
    if r.pretrained is not None and not r.pretrained.is_file():
        raise AtustcError(f"--pretrained {r.pretrained}: file not found")

    run = RunFolder(r.out)
    resuming = run.check_start(r.resume, r.force)
    checkpoint = None
    if resuming:
        recipe, engine = _resumed_recipe(run, spec, r.preset, r.seed, dict(r.overrides))
        checkpoint = load_checkpoint(run.last, kind="last")
        if checkpoint.get("sampler") != {"kind": recipe.sampler, "seed": r.seed, "world": world}:
            raise AtustcError(
                f"checkpoint {run.last}: sampler state {checkpoint.get('sampler')} does not match this run "
                f"(a run resumes with the same sampler, seed and number of processes)"
            )

    _, split, thash, root_path = load_split_for(r.table, r.split, r.root)
    train, val = split.train, split.val_protocol
    check_needs(spec, train, f"{r.split}/train.parquet")
    labels = build_label_maps(train, f"{r.split}/train.parquet")
    enc = labels.encode(train)
    notes: list[str] = []
    if not resuming:  # a resumed run keeps its saved recipe's sampler
        sampler, note = choose_sampler(recipe.sampler, enc["modality"], explicit="sampler" in r.overrides)
        if note is not None:
            recipe = dataclasses.replace(recipe, sampler=sampler)
            notes.append(note)
    try:
        plan = BatchPlan(
            enc["pid"],
            enc["modality"],
            recipe.sampler,
            recipe.num_identities,
            recipe.num_instances,
            recipe.iters_per_epoch,
            r.seed,
            world,
        )
    except AtustcError as exc:  # the batch plan does not fit this table: name it
        raise AtustcError(f"{r.split}/train.parquet: {exc.message}") from None
    split_protocols = SplitProtocols.from_info(split.info, f"{r.split}/split.json")
    val_protocol = split_protocols.validation
    val, val_note = _validation_rows(val, val_protocol)
    ids = int(val["pid"].nunique()) if len(val) else 0
    if val_note is None and ids < MIN_SELECTION_IDS:
        val_note = (
            f"{r.split}/val-protocol.parquet holds {ids} validation identit{'y' if ids == 1 else 'ies'} "
            f"(selection needs >= {MIN_SELECTION_IDS}: with one, every ranking is perfect)"
        )
    check_images(train, root_path, f"{r.split}/train.parquet")
    check_images(val, root_path, f"{r.split}/val-protocol.parquet")
    shash = hashlib.sha256((table_hash(train) + table_hash(split.val_protocol)).encode()).hexdigest()[:16]
    return TrainSetup(
        request=r,
        spec=spec,
        recipe=recipe,
        engine=engine,
        table_hash=thash,
        split_hash=shash,
        root=root_path,
        train=train,
        val=val,
        labels=labels,
        plan=plan,
        device=dev,
        run=run,
        resume=resuming,
        val_protocol=val_protocol,
        val_note=val_note,
        data_notes=tuple(notes),
        checkpoint=checkpoint,
        dataset=str(split.info.get("dataset", "atustc")),
        protocols=split_protocols.to_dict(),
    )


def check_needs(spec: MethodSpec, train: pd.DataFrame, source: str) -> None:
    """Refuse a training table that lacks a side-information field the method needs (``MethodSpec.needs``).

    Raises:
        AtustcError: a needed field is missing, only unknown (-1), or one value throughout.
    """
    for name in spec.needs:
        if name not in train.columns:
            raise AtustcError(f"method {spec.name} needs {name!r}, which {source} does not have")
        col = train[name]
        known = col[col != -1] if name != "modality" else col
        if len(known) == 0:
            raise AtustcError(f"method {spec.name} needs {name!r}, but {source} has only -1 (unknown) in it")
        if known.nunique() < 2:
            raise AtustcError(
                f"method {spec.name} needs {name!r}, but {source} has one value ({known.iloc[0]}) throughout"
            )


def _validation_rows(val: pd.DataFrame, protocol: str) -> tuple[pd.DataFrame, str | None]:
    """The validation rows the protocol scores, or none and the reason model selection is off."""
    from atustc.evaluate import needed_rows
    from atustc.protocol import load_protocol

    if len(val) == 0:
        return val, "the split has no validation rows"
    try:
        return val.iloc[needed_rows(load_protocol(protocol), val)].reset_index(drop=True), None
    except AtustcError as exc:
        return val.iloc[:0], f"the validation rows cannot be scored: {exc.message}"


def _resumed_recipe(
    run: RunFolder, spec: MethodSpec, preset: str, seed: int, overrides: dict[str, Any]
) -> tuple[Recipe, EngineConfig]:
    """The saved run's recipe and engine settings with this call's overrides on top.

    A resumed run keeps its recipe: ``--set`` options are needed only to change something, and
    a change of the recipe (or of the method, preset or seed) is refused, naming each key with
    both values. Engine settings (workers, batch size of the embedding, ...) may change.

    Raises:
        AtustcError: the method, preset, seed or recipe differs from the saved run.
    """
    cfg = run.read_config()
    for key, want in (("method", spec.name), ("preset", preset), ("seed", seed)):
        if cfg.get(key) != want:
            raise AtustcError(
                f"--resume {run.path}: {key} differs from the saved run ({cfg.get(key)!r} there, {want!r} now); "
                f"resume with the saved {key}, or train the new one into another --out"
            )
    fields = {f.name for f in dataclasses.fields(EngineConfig)}
    saved_engine = EngineConfig(**{k: v for k, v in cfg.get("engine", {}).items() if k in fields})
    recipe, engine = apply_overrides(
        recipe_from_dict(cfg["recipe"], str(run.config)), saved_engine, overrides, spec.options
    )
    now = recipe_to_dict(recipe)
    changed = [
        f"{k} ({cfg['recipe'].get(k)!r} there, {now.get(k)!r} now)" for k in now if now[k] != cfg["recipe"].get(k)
    ]
    if changed:
        raise AtustcError(
            f"--resume {run.path}: recipe differs from the saved run: {'; '.join(changed)}; "
            "resume without those --set options, or train the new recipe into another --out"
        )
    return recipe, engine
