"""The training loop of one process: build, train, log, validate, checkpoint, finish.

Trains for ``epochs x iters_per_epoch`` iterations with the method's recipe, logs to the run
folder, validates on the split's validation protocol (never the test set) to keep
``checkpoints/best.pt``, and writes ``checkpoints/last.pt`` atomically so that a killed run
continues with ``resume`` exactly where its last checkpoint left it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from atustc.engine.checkpoint import load_weights, rng_state, save_checkpoint, set_rng_state
from atustc.engine.data import TableDataset, collate, to_batch
from atustc.engine.distributed import DistInfo
from atustc.engine.embed import extract_features
from atustc.engine.optim import Optimisers, lr_factor
from atustc.engine.run import model_record
from atustc.engine.samplers import BatchStream
from atustc.engine.setup import TrainSetup
from atustc.engine.step import LossWindow, autocast_context, seed_everything, train_step, wrap_step
from atustc.engine.transforms import build_transforms
from atustc.errors import AtustcError
from atustc.provenance import sha256_file
from atustc.richprogress import Bar, progress_bar
from atustc.runfolder import CHECKPOINTS


class Trainer:
    """One training run (one process of it)."""

    def __init__(self, s: TrainSetup, info: DistInfo) -> None:
        self.s, self.info = s, info
        self.progress = s.request.progress and info.is_main
        self.recipe = s.recipe
        self.total = s.recipe.total_iters
        self.best: dict[str, Any] | None = None
        self.window = LossWindow(s.device)
        self.start, self.trained_s, self.trained_images = 0, 0.0, 0
        self.cpu_s = 0.0  # process CPU time of the training steps (all threads), beside the wall time
        # wall and process CPU time of the optimisation steps alone (no wait for the data loader), their number
        self.step_s, self.step_cpu_s, self.step_n = 0.0, 0.0, 0

    def _build(self) -> None:
        """Model, optimiser, schedule and scaler; restored from ``last.pt`` when resuming."""
        s, r = self.s, self.recipe
        seed_everything(s.seed)
        model = s.spec.create(s.labels.space, s.preset, s.request.pretrained, r.extra)
        members = ("loss", "embed", "head_names")
        if not isinstance(model, torch.nn.Module) or not all(hasattr(model, a) for a in members):
            raise AtustcError(f"method {s.spec.name}: build() must return an nn.Module with loss, embed and head_names")
        self.model = model.to(s.device)
        self.optim = Optimisers(model, r)
        self.scaler = torch.amp.GradScaler("cuda", enabled=s.amp == "fp16")
        if s.checkpoint is not None:
            ckpt, s.checkpoint = s.checkpoint, None
            load_weights(model, ckpt["model"], s.run.last)
            self.optim.load_state_dict(ckpt, s.run.last)
            self.scaler.load_state_dict(ckpt["scaler"])
            set_rng_state(ckpt["rng"])
            self.start, self.window, self.best = int(ckpt["iter"]), LossWindow(s.device, ckpt["window"]), ckpt["best"]
            self.trained_s, self.trained_images = float(ckpt["train_time_s"]), int(ckpt["train_images"])
            self.cpu_s = float(ckpt.get("train_cpu_s", 0.0))
            self.step_s, self.step_n = float(ckpt.get("train_step_s", 0.0)), int(ckpt.get("train_step_n", 0))
            self.step_cpu_s = float(ckpt.get("train_step_cpu_s", 0.0))
            if self.info.is_main:
                s.run.truncate_metrics(self.start)
        if self.info.is_main:
            params = sum(p.numel() for p in model.parameters())
            missing = self._report_data(tuple(model.head_names))
            s.run.write_status(
                params=params,
                model_config=model_record(model),
                heads=list(model.head_names),
                heads_without_data=missing,
                data_notes=list(s.data_notes),
                total_iters=self.total,
            )

    def _report_data(self, heads: tuple[str, ...]) -> dict[str, str]:
        """Log and print how the recipe met the data, and the heads the train table cannot teach."""
        import sys

        from atustc.engine.headdata import heads_without_data

        s = self.s
        t = s.train
        missing = heads_without_data(
            heads, t["pid"].to_numpy(), (t["modality"] == "ir").to_numpy(), t["clothes"].to_numpy()
        )
        lines = [*s.data_notes] + [f"head {h} gets no training signal: {why}" for h, why in missing.items()]
        for line in lines:
            s.run.log(f"warning: {line}")
            print(f"warning: {line}", file=sys.stderr)
        return missing

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
        """Train from ``self.start`` to the end; rank 0 writes logs, checkpoints and the final status."""
        s, r = self.s, self.recipe
        self._build()
        step = wrap_step(self.model, self.info, s.device, compile=s.request.compile, unused=s.spec.unused_parameters)
        loader = self._loader()
        self.model.train()
        set_epoch, epoch_set = getattr(self.model, "set_epoch", None), -1
        t_last, c_last = time.perf_counter(), time.process_time()
        with progress_bar("train", self.total, self.progress, completed=self.start, eta=True) as bar:
            for it, tensors in zip(range(self.start, self.total), loader):
                t_step, c_step = time.perf_counter(), time.process_time()
                batch = to_batch(tensors, s.device)
                autocast = autocast_context(s.device, s.amp)
                if it // r.iters_per_epoch != epoch_set and set_epoch is not None:
                    epoch_set = it // r.iters_per_epoch
                    set_epoch(epoch_set)
                losses = train_step(step, self.optim, self.scaler, batch, r.clip_grad_norm, autocast, it)
                self.optim.schedule.step()
                self.window.add(losses)
                now, cpu_now = time.perf_counter(), time.process_time()
                self.step_s, self.step_n = self.step_s + now - t_step, self.step_n + 1
                self.step_cpu_s += cpu_now - c_step
                self.trained_s += now - t_last
                self.cpu_s += cpu_now - c_last
                self.trained_images += len(batch.pid) * self.info.world
                done, lr_now = it + 1, r.lr * lr_factor(r, it)
                ips = self.trained_images / max(self.trained_s, 1e-9)
                if self.progress:
                    loss = float(losses["total"].detach())
                    bar.set(done, info=f"loss {loss:.4f}  lr {lr_now:.2e}  {ips:.1f} img/s")
                if done % s.engine.log_every == 0 or done == self.total:
                    self._log(done, lr_now, ips)
                epoch_end, epoch = done % r.iters_per_epoch == 0, done // r.iters_per_epoch
                if epoch_end and (done == self.total or (r.eval_every_epochs and epoch % r.eval_every_epochs == 0)):
                    self._validate(done, epoch, bar)
                every = s.engine.checkpoint_every
                if done == self.total or (done % every == 0 if every else epoch_end):
                    self._checkpoint(done, epoch)
                t_last, c_last = time.perf_counter(), time.process_time()
        if self.info.is_main:
            self._finish()

    def _log(self, done: int, lr: float, ips: float) -> None:
        record = {"iter": done, "epoch": math.ceil(done / self.recipe.iters_per_epoch), "lr": lr}
        record.update(self.window.means(self.info))
        record["images_per_s"] = ips
        self.window = LossWindow(self.s.device)
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
            **self.optim.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": {"kind": self.recipe.sampler, "seed": s.seed, "world": self.info.world},
            "rng": rng_state(),
            "window": self.window.state(),
            "best": self.best,
            "train_time_s": self.trained_s,
            "train_cpu_s": self.cpu_s,
            "train_step_s": self.step_s,
            "train_step_n": self.step_n,
            "train_step_cpu_s": self.step_cpu_s,
            "train_images": self.trained_images,
        }
        save_checkpoint(s.run.last, "last", state)
        s.run.write_status(iter=done, last={"iter": done, "epoch": epoch})

    def _validate(self, done: int, epoch: int, bar: Bar) -> None:
        """Score the validation protocol; keep ``best.pt`` when the selection metric improves."""
        s, run = self.s, self.s.run
        if len(s.val) == 0:
            return
        from atustc.evaluate import evaluate
        from atustc.protocol import load_protocol

        self.model.eval()
        bar.set(info="validating")
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
        result = evaluate(load_protocol(s.val_protocol), s.val, feats).to_dict()
        group, name = selection_row(result)
        value = float(result[group][name][s.engine.val_metric])
        run.append_metrics({"iter": done, "epoch": epoch, "val": {"protocol": s.val_protocol, **result}})
        metric = f"val/{s.val_protocol}/{name}/{s.engine.val_metric}"
        run.log(f"epoch {epoch} iter {done}: {metric} = {value:.4f}")
        if math.isnan(value) or s.val_note is not None:  # logged, but not selected on
            return
        if self.best is None or value > self.best["value"]:
            self.best = {"iter": done, "epoch": epoch, "metric": metric, "value": value}
            save_checkpoint(run.best, "best", {"model": self.model.state_dict(), **self.best})
            run.write_status(best=self.best)

    def _finish(self) -> None:
        run, model, trained_s = self.s.run, self.model, self.trained_s
        if self.best is None:
            self.best = {
                "iter": self.total,
                "epoch": self.recipe.epochs,
                "metric": "last (no validation score)",
                "reason": self.s.val_note,
                "value": None,
            }
            save_checkpoint(run.best, "best", {"model": model.state_dict(), **self.best})
        ips = self.trained_images / max(trained_s, 1e-9)
        hashes = {k: {"sha256": sha256_file(run.checkpoint_file(k))} for k in CHECKPOINTS}
        run.log(f"finished: {self.total} iterations, {trained_s:.1f} s, {ips:.1f} images/s, best {self.best}")
        run.write_status(
            state="finished",
            error=None,
            iter=self.total,
            train_time_s=trained_s,
            train_cpu_s=self.cpu_s,
            step_time_s=self.step_s / max(self.step_n, 1),
            # a GPU run's host CPU time says nothing of the device's work: CPU runs only
            step_cpu_s=self.step_cpu_s / max(self.step_n, 1) if self.s.device.type == "cpu" else None,
            images_per_s=ips,
            best=self.best,
            last={"iter": self.total, "epoch": self.recipe.epochs},
            checkpoints=hashes,
        )


def selection_row(result: dict[str, Any]) -> tuple[str, str]:
    """``(group, name)`` of the row model selection reads: the protocol's last, overall aggregate
    (``Any-Time``; mixed: ``Anytime``), else its last scenario (Market-1501's ``single-query``;
    PRCC's and LTCC's ``clothes-change``, the value their papers report).

    Raises:
        AtustcError: the validation protocol has neither an aggregate nor a scenario.
    """
    for group in ("summary", "scenarios"):
        if result[group]:
            return group, list(result[group])[-1]
    raise AtustcError(f"validation protocol {result['protocol']}: no row to select best.pt on")
