"""The training loop: any registered method, from an annotation table and a split, into a run folder.

:func:`train_run` resolves and checks everything first (method, preset, overrides, data, fit of
the batch plan, images on disk, the run folder) so that bad input fails with one clear line before
anything is written. It then trains for ``epochs x iters_per_epoch`` iterations with the method's
recipe, logs to the run folder, validates on the split's validation protocol (never the test set)
to keep ``checkpoints/best.pt``, and writes ``checkpoints/last.pt`` atomically so that a killed run
continues with ``resume=True`` exactly where its last checkpoint left it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import random
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from atustc.engine.checkpoint import load_checkpoint, load_weights, rng_state, save_checkpoint, set_rng_state
from atustc.engine.config import EngineConfig, apply_overrides, import_plugins, recipe_to_dict
from atustc.engine.data import LabelMaps, TableDataset, build_label_maps, check_images, collate, to_batch
from atustc.engine.distributed import DistInfo, barrier, env_info, resolve_device, setup, teardown
from atustc.engine.embed import extract_features
from atustc.engine.optim import Schedule, build_optimizer, lr_factor
from atustc.engine.run import RunFolder, build_manifest
from atustc.engine.samplers import BatchPlan, BatchStream
from atustc.engine.transforms import build_transforms
from atustc.errors import AtustcError
from atustc.methods import MethodSpec, Recipe, get_method
from atustc.methods.contract import PRESETS

Amp = Literal["off", "bf16", "fp16"]
VAL_PROTOCOL = "atustc"


@dataclass
class TrainSetup:
    """Everything a run needs, resolved and checked; nothing written yet."""

    spec: MethodSpec
    preset: str
    recipe: Recipe
    engine: EngineConfig
    seed: int
    table_path: Path
    table_hash: str
    split_dir: Path
    split_hash: str
    root: Path
    train: pd.DataFrame
    val: pd.DataFrame
    labels: LabelMaps
    plan: BatchPlan
    pretrained: Path | None
    device: torch.device
    amp: Amp
    compile: bool
    plugins: tuple[str, ...]
    run: RunFolder
    resume: bool
    val_note: str | None = None  # why there is no model selection, if there is none
    checkpoint: dict[str, Any] | None = None  # last.pt, read and checked before anything is written
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self, world: int) -> dict[str, Any]:
        """The resolved config written to ``config.json``."""
        return {
            "method": self.spec.name,
            "family": self.spec.family,
            "preset": self.preset,
            "seed": self.seed,
            "table": self.table_path.resolve().as_posix(),
            "table_hash": self.table_hash,
            "split": self.split_dir.resolve().as_posix(),
            "split_hash": self.split_hash,
            "root": self.root.resolve().as_posix(),
            "pretrained": None if self.pretrained is None else self.pretrained.resolve().as_posix(),
            "device": self.device.type,
            "amp": self.amp,
            "compile": self.compile,
            "world_size": world,
            "plugins": list(self.plugins),
            "overrides": {k: str(v) for k, v in self.overrides.items()},
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


def prepare(
    method: str,
    table_path: str | os.PathLike[str],
    split_dir: str | os.PathLike[str],
    preset: str,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    resume: bool = False,
    force: bool = False,
    root: str | os.PathLike[str] | None = None,
    pretrained: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "auto",
    amp: Amp = "off",
    compile: bool = False,
    plugins: Sequence[str] = (),
    world: int = 1,
) -> TrainSetup:
    """Resolve and check a training run without writing anything (see :func:`train_run`).

    Raises:
        AtustcError: any bad input (the message names it).
    """
    from atustc.split import load_split_for
    from atustc.table import table_hash

    import_plugins(plugins)
    spec = get_method(method)
    if preset not in PRESETS:
        raise AtustcError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    if amp not in ("off", "bf16", "fp16"):
        raise AtustcError(f"--amp {amp!r}: expected off, bf16 or fp16")
    info = env_info()
    dev = resolve_device(device, info)
    if amp == "fp16" and dev.type != "cuda":
        raise AtustcError("--amp fp16 needs a GPU (its gradient scaler is CUDA-only); use --amp bf16 on the CPU")
    recipe, engine = apply_overrides(spec.recipe(preset), EngineConfig(), overrides)
    pretrained_path = None if pretrained is None else Path(pretrained)
    if pretrained_path is not None and not pretrained_path.is_file():
        raise AtustcError(f"--pretrained {pretrained_path}: file not found")

    run = RunFolder(out)
    resuming = run.check_start(resume, force)
    checkpoint = None
    if resuming:
        _check_resume_config(run, spec.name, preset, seed, recipe)
        checkpoint = load_checkpoint(run.last, kind="last")
        if checkpoint.get("sampler") != {"kind": recipe.sampler, "seed": seed, "world": world}:
            raise AtustcError(
                f"checkpoint {run.last}: sampler state {checkpoint.get('sampler')} does not match this run "
                f"(a run resumes with the same sampler, seed and number of processes)"
            )

    table_path = Path(table_path)
    table, split, thash, root_path = load_split_for(table_path, split_dir, root)
    train, val = split.train, split.val_protocol
    labels = build_label_maps(train, f"{split_dir}/train.parquet")
    enc = labels.encode(train)
    plan = BatchPlan(
        enc["pid"],
        enc["modality"],
        recipe.sampler,
        recipe.num_identities,
        recipe.num_instances,
        recipe.iters_per_epoch,
        seed,
        world,
    )
    val, val_note = _validation_rows(val)
    check_images(train, root_path, f"{split_dir}/train.parquet")
    check_images(val, root_path, f"{split_dir}/val-protocol.parquet")
    shash = hashlib.sha256((table_hash(train) + table_hash(split.val_protocol)).encode()).hexdigest()[:16]
    return TrainSetup(
        spec=spec,
        preset=preset,
        recipe=recipe,
        engine=engine,
        seed=seed,
        table_path=table_path,
        table_hash=thash,
        split_dir=Path(split_dir),
        split_hash=shash,
        root=root_path,
        train=train,
        val=val,
        labels=labels,
        plan=plan,
        pretrained=pretrained_path,
        device=dev,
        amp=amp,
        compile=compile,
        plugins=tuple(plugins),
        run=run,
        resume=resuming,
        val_note=val_note,
        checkpoint=checkpoint,
        overrides=dict(overrides or {}),
    )


def _validation_rows(val: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """The validation rows the protocol scores, or none and the reason model selection is off."""
    from atustc.evaluate import needed_rows
    from atustc.protocol import load_protocol

    if len(val) == 0:
        return val, "the split has no validation rows"
    try:
        return val.iloc[needed_rows(load_protocol(VAL_PROTOCOL), val)].reset_index(drop=True), None
    except AtustcError as exc:
        return val.iloc[:0], f"the validation rows cannot be scored: {exc.message}"


def _check_resume_config(run: RunFolder, method: str, preset: str, seed: int, recipe: Recipe) -> None:
    cfg = run.read_config()
    for key, want in (("method", method), ("preset", preset), ("seed", seed), ("recipe", recipe_to_dict(recipe))):
        if cfg.get(key) != want:
            shown = "" if key == "recipe" else f" ({cfg.get(key)!r} there, {want!r} now)"
            raise AtustcError(
                f"--resume {run.path}: {key} differs from the saved run{shown}; use --force to start over"
            )


def train_run(
    method: str,
    table_path: str | os.PathLike[str],
    split_dir: str | os.PathLike[str],
    preset: str,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    resume: bool = False,
    root: str | os.PathLike[str] | None = None,
    pretrained: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "auto",
    amp: Amp = "off",
    compile: bool = False,
    progress: bool = True,
    force: bool = False,
    plugins: Sequence[str] = (),
) -> Path:
    """Train ``method`` on the split's train table and write the run folder ``out``.

    Under ``torchrun`` every process calls this; rank 0 writes the run folder.

    Args:
        method: a registered method name.
        table_path: the annotation table (hash recorded; image root from its manifest if needed).
        split_dir: a split folder (``atustc split``): trains on ``train``, validates on ``val-protocol``.
        preset: ``tiny`` or ``paper``.
        out: the run folder.
        seed: seeds model init, sampler, augmentation and every RNG.
        resume: continue from ``out/checkpoints/last.pt`` (a missing or empty ``out`` starts afresh).
        root: image root; default: the split's recorded root, else the table manifest's.
        pretrained: local pretrained weights file, passed to the method's builder.
        overrides: recipe / engine overrides (see :mod:`atustc.engine.config`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: ``off``, ``bf16`` (CPU or GPU autocast) or ``fp16`` (GPU, with a gradient scaler).
        compile: wrap the training step in ``torch.compile``.
        progress: show a rich progress bar.
        force: start over in an existing run folder (deleting it).
        plugins: modules to import first (they register extra methods).

    Returns:
        The run folder.

    Raises:
        AtustcError: bad input, before anything is written; or a non-finite loss during training
            (the run is then marked ``failed``).
    """
    info = env_info()
    s = prepare(
        method,
        table_path,
        split_dir,
        preset,
        out,
        seed=seed,
        resume=resume,
        force=force,
        root=root,
        pretrained=pretrained,
        overrides=overrides,
        device=device,
        amp=amp,
        compile=compile,
        plugins=plugins,
        world=info.world,
    )
    setup(info, s.device)
    try:
        if info.is_main:
            _open_run(s, info)
        barrier(info)
        try:
            _Trainer(s, info, progress).fit()
        except BaseException as exc:
            if info.is_main:
                msg = exc.message if isinstance(exc, AtustcError) else f"{type(exc).__name__}: {exc}"
                s.run.log(f"failed: {msg}")
                s.run.write_status(state="failed", error=msg)
            raise
    finally:
        teardown(info)
    return s.run.path


def _open_run(s: TrainSetup, info: DistInfo) -> None:
    from atustc.io import write_json_atomic

    run = s.run
    if s.resume:
        run.log(f"resuming from {run.last}")
    else:
        run.reset()
        write_json_atomic(run.config, s.config(info.world))
        write_json_atomic(
            run.manifest, build_manifest(s.seed, s.device.type, info.world, s.table_hash, s.split_hash)
        )
        run.log(
            f"start: method={s.spec.name} preset={s.preset} seed={s.seed} device={s.device} amp={s.amp} "
            f"world={info.world} train_images={len(s.train)} ids={s.labels.space.num_pids} val_images={len(s.val)}"
        )
        if s.val_note:
            run.log(f"no model selection: {s.val_note}; best.pt will be the last weights")
    run.write_status(
        state="running", error=None, method=s.spec.name, preset=s.preset, seed=s.seed, world_size=info.world
    )


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TrainStep(torch.nn.Module):
    """Forward plus loss in one module, so DDP and torch.compile see every parameter the loss uses."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.model.loss(self.model(batch), batch)


def autocast_context(device: torch.device, amp: Amp) -> Any:
    """The autocast context of ``amp`` (``off``: a no-op context)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def train_step(
    step: torch.nn.Module,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    batch: Any,
    clip_grad_norm: float | None,
    autocast: Any,
    it: int,
) -> dict[str, torch.Tensor]:
    """One optimisation step: forward + loss under ``autocast``, backward, clipping, update.

    Args:
        step: the (possibly DDP-wrapped or compiled) module returning the loss dict.
        model: the bare model (its parameters are clipped).
        it: the 0-based iteration, for the error message.

    Raises:
        AtustcError: the loss is not finite.
    """
    with autocast:
        losses = step(batch)
    loss = losses["total"]
    if not torch.isfinite(loss.detach()):
        raise AtustcError(f"loss is {float(loss)} at iteration {it + 1}; lower the lr or train without --amp")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip_grad_norm:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return losses


class _Window:
    """Loss sums over the current logging window (kept in checkpoints so logs resume exactly)."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.sums: dict[str, float] = dict((state or {}).get("sums", {}))
        self.count = int((state or {}).get("count", 0))

    def add(self, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def means(self, info: DistInfo) -> dict[str, float]:
        keys = sorted(self.sums)
        vals = torch.tensor([self.sums[k] / max(self.count, 1) for k in keys], dtype=torch.float64)
        if info.enabled:
            torch.distributed.all_reduce(vals)
            vals /= info.world
        return {f"loss/{k}": float(v) for k, v in zip(keys, vals)}

    def state(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "count": self.count}


class _Trainer:
    """One training run (one process of it)."""

    def __init__(self, s: TrainSetup, info: DistInfo, progress: bool) -> None:
        self.s, self.info = s, info
        self.progress = progress and info.is_main
        self.recipe = s.recipe
        self.total = s.recipe.total_iters
        self.best: dict[str, Any] | None = None
        self.window = _Window()
        self.start, self.trained_s, self.trained_images = 0, 0.0, 0

    def _build(self) -> None:
        """Model, optimiser, schedule and scaler; restored from ``last.pt`` when resuming."""
        s, r = self.s, self.recipe
        seed_everything(s.seed)
        model = s.spec.build(s.labels.space, s.preset, s.pretrained)
        members = ("loss", "embed", "head_names")
        if not isinstance(model, torch.nn.Module) or not all(hasattr(model, a) for a in members):
            raise AtustcError(f"method {s.spec.name}: build() must return an nn.Module with loss, embed and head_names")
        self.model = model.to(s.device)
        self.optimizer = build_optimizer(model, r)
        self.schedule = Schedule(self.optimizer, r)
        self.scaler = torch.amp.GradScaler("cuda", enabled=s.amp == "fp16")
        if s.checkpoint is not None:
            ckpt, s.checkpoint = s.checkpoint, None
            load_weights(model, ckpt["model"], s.run.last)
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.schedule.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
            set_rng_state(ckpt["rng"])
            self.start, self.window, self.best = int(ckpt["iter"]), _Window(ckpt["window"]), ckpt["best"]
            self.trained_s, self.trained_images = float(ckpt["train_time_s"]), int(ckpt["train_images"])
            if self.info.is_main:
                s.run.truncate_metrics(self.start)
        if self.info.is_main:
            params = sum(p.numel() for p in model.parameters())
            s.run.write_status(params=params, heads=list(model.head_names), total_iters=self.total)

    def _step_module(self) -> torch.nn.Module:
        """The training step, compiled and/or wrapped in DDP as asked."""
        s = self.s
        step: torch.nn.Module = TrainStep(self.model)
        if s.compile:
            step = torch.compile(step)
        if self.info.enabled:
            ids = [s.device.index] if s.device.type == "cuda" else None
            step = torch.nn.parallel.DistributedDataParallel(step, device_ids=ids, find_unused_parameters=True)
        return step

    def _loader(self) -> torch.utils.data.DataLoader:
        s = self.s
        train_tf, _ = build_transforms(self.recipe)
        return torch.utils.data.DataLoader(
            TableDataset(s.train, s.root, s.labels, train_tf),
            batch_sampler=BatchStream(s.plan, self.start, self.total, self.info.rank),
            num_workers=s.engine.num_workers,
            pin_memory=s.device.type == "cuda",
            collate_fn=collate,
            generator=torch.Generator().manual_seed(s.seed),  # keeps the global torch RNG untouched
        )

    def fit(self) -> None:
        s, r = self.s, self.recipe
        self._build()
        step, loader = self._step_module(), self._loader()
        bar = _ProgressBar(self.total, self.start, enabled=self.progress)
        self.model.train()
        t_last = time.perf_counter()
        with bar:
            for it, tensors in zip(range(self.start, self.total), loader):
                batch = to_batch(tensors, s.device)
                autocast = autocast_context(s.device, s.amp)
                losses = train_step(
                    step, self.model, self.optimizer, self.scaler, batch, r.clip_grad_norm, autocast, it
                )
                self.schedule.step()
                self.window.add({k: float(v.detach()) for k, v in losses.items()})
                self.trained_s += time.perf_counter() - t_last
                self.trained_images += len(batch.pid) * self.info.world
                done, lr_now = it + 1, r.lr * lr_factor(r, it)
                ips = self.trained_images / max(self.trained_s, 1e-9)
                bar.update(done, loss=float(losses["total"].detach()), lr=lr_now, ips=ips)
                if done % s.engine.log_every == 0 or done == self.total:
                    self._log(done, lr_now, ips)
                epoch_end, epoch = done % r.iters_per_epoch == 0, done // r.iters_per_epoch
                if epoch_end and (done == self.total or (r.eval_every_epochs and epoch % r.eval_every_epochs == 0)):
                    self._validate(done, epoch, bar)
                every = s.engine.checkpoint_every
                if done == self.total or (done % every == 0 if every else epoch_end):
                    self._checkpoint(done, epoch)
                t_last = time.perf_counter()
        if self.info.is_main:
            self._finish()

    def _log(self, done: int, lr: float, ips: float) -> None:
        record = {"iter": done, "epoch": math.ceil(done / self.recipe.iters_per_epoch), "lr": lr}
        record.update(self.window.means(self.info))
        record["images_per_s"] = ips
        self.window = _Window()
        if self.info.is_main:
            self.s.run.append_metrics(record)

    def _checkpoint(self, done: int, epoch: int) -> None:
        """Write ``last.pt`` (rank 0): everything a resume needs."""
        if not self.info.is_main:
            return
        s = self.s
        state = {
            "method": s.spec.name,
            "preset": s.preset,
            "iter": done,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": {"kind": self.recipe.sampler, "seed": s.seed, "world": self.info.world},
            "rng": rng_state(),
            "window": self.window.state(),
            "best": self.best,
            "train_time_s": self.trained_s,
            "train_images": self.trained_images,
        }
        save_checkpoint(s.run.last, "last", state)
        s.run.write_status(iter=done, last={"iter": done, "epoch": epoch})

    def _validate(self, done: int, epoch: int, bar: _ProgressBar) -> None:
        """Score the validation protocol; keep ``best.pt`` when the selection metric improves."""
        s, run = self.s, self.s.run
        if len(s.val) == 0:
            return
        from atustc.evaluate import evaluate
        from atustc.protocol import load_protocol

        self.model.eval()
        bar.note("validating")
        feats = extract_features(
            self.model,
            s.val,
            s.root,
            s.recipe,
            s.labels,
            s.device,
            s.engine.eval_batch_size,
            amp=s.amp,
            num_workers=s.engine.num_workers,
            info=self.info,
        )
        self.model.train()
        if not self.info.is_main:
            return
        result = evaluate(load_protocol(VAL_PROTOCOL), s.val, feats).to_dict()
        anytime = result["summary"]["Any-Time"]
        value = float(anytime[s.engine.val_metric])
        run.append_metrics({"iter": done, "epoch": epoch, "val": {"protocol": VAL_PROTOCOL, **result}})
        metric = f"val/{VAL_PROTOCOL}/Any-Time/{s.engine.val_metric}"
        run.log(f"epoch {epoch} iter {done}: {metric} = {value:.4f}")
        if math.isnan(value):
            return
        if self.best is None or value > self.best["value"]:
            self.best = {"iter": done, "epoch": epoch, "metric": metric, "value": value}
            save_checkpoint(run.best, "best", {"model": self.model.state_dict(), **self.best})
            run.write_status(best=self.best)

    def _finish(self) -> None:
        run, model, trained_s = self.s.run, self.model, self.trained_s
        if self.best is None:
            self.best = {"iter": self.total, "epoch": self.recipe.epochs, "metric": "last (no validation score)",
                         "reason": self.s.val_note,
                         "value": None}
            save_checkpoint(run.best, "best", {"model": model.state_dict(), **self.best})
        ips = self.trained_images / max(trained_s, 1e-9)
        run.log(f"finished: {self.total} iterations, {trained_s:.1f} s, {ips:.1f} images/s, best {self.best}")
        run.write_status(
            state="finished",
            error=None,
            iter=self.total,
            train_time_s=trained_s,
            images_per_s=ips,
            best=self.best,
            last={"iter": self.total, "epoch": self.recipe.epochs},
        )


class _ProgressBar:
    """A rich progress bar with ETA, loss, lr and images/s (or nothing when disabled)."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self.task = self.bar.add_task("train", total=total, completed=start, info="")

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()

    def update(self, done: int, loss: float, lr: float, ips: float) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=done, info=f"loss {loss:.4f}  lr {lr:.2e}  {ips:.1f} img/s")

    def note(self, text: str) -> None:
        if self.enabled:
            self.bar.update(self.task, info=text)
