"""Train any registered method, from an annotation table and a split, into a run folder.

:func:`run_training` takes a :class:`~atustc.engine.request.TrainRequest`, resolves and checks it
(:func:`~atustc.engine.setup.prepare`: bad input fails with one clear line before anything is
written), opens the run folder on rank 0 and hands over to the
:class:`~atustc.engine.trainer.Trainer`. :func:`train_run` is the same with the request's fields
as arguments.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from atustc.engine.distributed import DistInfo, barrier, env_info, setup, teardown
from atustc.engine.request import TrainRequest
from atustc.engine.run import build_manifest
from atustc.engine.setup import TrainSetup, prepare
from atustc.engine.trainer import Trainer
from atustc.errors import AtustcError
from atustc.runfolder import RunFolder

__all__ = ["TrainRequest", "prepare", "run_training", "train_run"]


def run_training(request: TrainRequest) -> Path:
    """Train the request's method on the split's train table and write its run folder.

    Under ``torchrun`` every process calls this; rank 0 writes the run folder and holds its lock
    (a second process on the same folder refuses in one line).

    Returns:
        The run folder.

    Raises:
        AtustcError: bad input, before anything is written; or a non-finite loss during training
            (the run is then marked ``failed``).
    """
    info = env_info()
    hold = info.is_main and not os.environ.get("ATUSTC_LAUNCHED")  # a --nproc launcher holds it for its workers
    with RunFolder(request.out).lock("train") if hold else nullcontext():
        return _train(request, info)


def _train(request: TrainRequest, info: DistInfo) -> Path:
    s = prepare(request, world=info.world)
    setup(info, s.device)
    try:
        if info.is_main:
            _open_run(s, info)
        barrier(info)
        try:
            Trainer(s, info).fit()
        except BaseException as exc:
            if info.is_main:
                msg = exc.message if isinstance(exc, AtustcError) else f"{type(exc).__name__}: {exc}"
                s.run.log(f"failed: {msg}")
                s.run.write_status(state="failed", error=msg)
            raise
    finally:
        teardown(info)
    return s.run.path


def train_run(
    method: str,
    table: str | os.PathLike[str],
    split: str | os.PathLike[str],
    preset: str,
    out: str | os.PathLike[str],
    **options: Any,
) -> Path:
    """:func:`run_training` of ``TrainRequest.make(method, table, split, preset, out, **options)``.

    ``options`` are the other :class:`~atustc.engine.request.TrainRequest` fields (``seed``,
    ``resume``, ``force``, ``root``, ``pretrained``, ``overrides``, ``device``, ``amp``,
    ``compile``, ``plugins``, ``progress``).
    """
    return run_training(TrainRequest.make(method, table, split, preset, out, **options))


def _open_run(s: TrainSetup, info: DistInfo) -> None:
    from atustc.io import write_json_atomic

    run = s.run
    if s.resume:
        run.log(f"resuming from {run.last}")
    else:
        run.reset()
        write_json_atomic(run.config, s.config(info.world))
        write_json_atomic(run.manifest, build_manifest(s.seed, s.device.type, info.world, s.table_hash, s.split_hash))
        run.log(
            f"start: method={s.spec.name} preset={s.preset} seed={s.seed} device={s.device} amp={s.amp} "
            f"world={info.world} train_images={len(s.train)} ids={s.labels.space.num_pids} val_images={len(s.val)}"
        )
        if s.val_note:
            run.log(f"no model selection: {s.val_note}; best.pt will be the last weights")
    run.write_status(
        state="running",
        error=None,
        method=s.spec.name,
        preset=s.preset,
        seed=s.seed,
        world_size=info.world,
        selection={"validation_identities": int(s.val["pid"].nunique()) if len(s.val) else 0, "note": s.val_note},
    )
    if s.val_note and info.is_main and s.request.progress:
        import sys

        print(f"warning: no model selection: {s.val_note}; best.pt will be the last weights", file=sys.stderr)
