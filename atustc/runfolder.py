"""The run folder layout (torch-free): where a run's config, manifest, status, log, metrics,
checkpoints and eval files live, and their writers.

Layout::

    RUN/config.json          resolved config (method, preset, seed, data, recipe, engine, labels)
    RUN/manifest.json        package versions, git commit, device, seed, table and split hashes,
                             the environment variables that change training (``environment``)
    RUN/status.json          {"state": running|finished|failed, "error", "params", "train_time_s",
                              "step_time_s" (mean seconds per optimisation step, data wait excluded),
                              "step_cpu_s" (the same steps' mean process CPU seconds, all threads),
                              "model_config" (the built model's dataclass configs), ...}
    RUN/train.log            human-readable log
    RUN/metrics.jsonl        one JSON object per logging window and per validation
    RUN/checkpoints/last.pt  full training state (resume)
    RUN/checkpoints/best.pt  weights selected on the validation split
    RUN/eval/<protocol>@<checkpoint>.json
                             scores of one checkpoint (``last``: the bench; ``best``: ``atustc eval --run``
                             by default), with their provenance (:mod:`atustc.provenance`)
    RUN/eval/xd-<dataset>@<checkpoint>.json
                             zero-shot scores on another dataset's default protocol (``atustc bench
                             --cross-domain``; :mod:`atustc.bench.crossdomain`)
    RUN/.lock                held by the one process that writes the run (:meth:`RunFolder.lock`)

A bench names its runs ``RUNS/<method>-<preset>-s<seed>`` (:func:`run_name`).

JSON files are written atomically. ``train.log`` and ``metrics.jsonl`` are append-only; on resume
``metrics.jsonl`` is rewritten (atomically) without the lines past the checkpoint, so a resumed
run's metrics equal those of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from atustc.errors import AtustcError
from atustc.io import read_json, write_json_atomic, write_text_atomic

Checkpoint = Literal["best", "last"]
CHECKPOINTS: tuple[str, ...] = ("best", "last")
LOCK_NAME = ".lock"
#: File-name prefix of cross-domain eval files (``eval/xd-<dataset>@<checkpoint>.json``).
XD_PREFIX = "xd-"


def run_name(method: str, preset: str, seed: int) -> str:
    """The run folder name of one method, preset and seed in a bench's runs folder."""
    return f"{method}-{preset}-s{seed}"


def _alive(holder: str) -> bool:
    """Whether the process named in a lock file (``... (pid N)``) still runs; True when unknown or unnamed."""
    match = re.search(r"\(pid (\d+)\)", holder)
    if match is None:
        return True
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class RunFolder:
    """Paths and writers of one run folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.manifest = self.path / "manifest.json"
        self.status_file = self.path / "status.json"
        self.log_file = self.path / "train.log"
        self.metrics = self.path / "metrics.jsonl"
        self.checkpoints = self.path / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.best = self.checkpoints / "best.pt"
        self.eval_dir = self.path / "eval"
        self.lock_file = self.path / LOCK_NAME

    def checkpoint_file(self, kind: str) -> Path:
        """``checkpoints/<kind>.pt`` (``best`` or ``last``)."""
        if kind not in CHECKPOINTS:
            raise AtustcError(f"--checkpoint {kind!r}: expected best or last")
        return self.checkpoints / f"{kind}.pt"

    def eval_file(self, protocol: str, checkpoint: str) -> Path:
        """``eval/<protocol>@<checkpoint>.json``: one protocol's scores of one checkpoint."""
        if checkpoint not in CHECKPOINTS:
            raise AtustcError(f"--checkpoint {checkpoint!r}: expected best or last")
        return self.eval_dir / f"{protocol}@{checkpoint}.json"

    def xd_eval_file(self, dataset: str, checkpoint: str) -> Path:
        """``eval/xd-<dataset>@<checkpoint>.json``: zero-shot scores of one checkpoint on another dataset."""
        return self.eval_file(f"{XD_PREFIX}{dataset}", checkpoint)

    def xd_datasets(self, checkpoint: str) -> list[str]:
        """The datasets this run was scored on zero-shot with ``checkpoint`` (sorted)."""
        suffix = f"@{checkpoint}.json"
        if not self.eval_dir.is_dir():
            return []
        names = (p.name for p in self.eval_dir.iterdir() if p.name.startswith(XD_PREFIX) and p.name.endswith(suffix))
        return sorted(n[len(XD_PREFIX) : -len(suffix)] for n in names)

    def per_query_file(self, protocol: str, checkpoint: str) -> Path:
        """``eval/<protocol>@<checkpoint>.per_query.parquet``: the per-query results behind that eval file."""
        return self.eval_file(protocol, checkpoint).with_suffix(".per_query.parquet")

    def rerank_file(self, protocol: str, checkpoint: str) -> Path:
        """``eval/<protocol>@<checkpoint>.rerank.json``: re-ranked scores (never replacing the plain ones)."""
        return self.eval_file(protocol, checkpoint).with_suffix(".rerank.json")

    def exists(self) -> bool:
        """Whether the folder holds anything (besides its lock file)."""
        return self.path.is_dir() and any(p.name != LOCK_NAME for p in self.path.iterdir())

    @contextlib.contextmanager
    def lock(self, what: str = "train") -> Iterator[None]:
        """Hold the run's lock (``RUN/.lock``, an advisory ``flock``) for the ``with`` block.

        A folder this call created and left holding only the lock is removed again, so a run that
        fails its checks leaves nothing behind.

        Raises:
            AtustcError: another process holds the lock (it names its pid and what it does).
        """
        import fcntl

        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        fh = self.lock_file.open("a+", encoding="utf-8")
        try:
            held = True
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                if _alive(holder):
                    raise AtustcError(
                        f"{self.path} is in use by {holder}; wait for it to finish or choose another folder"
                    ) from None
                # the holder died; what still holds the lock are its forked children (data-loader
                # workers of a killed run), which exit by themselves and write nothing
                held = False
            if held:
                fh.seek(0)
                fh.truncate()
                fh.write(f"atustc {what} (pid {os.getpid()})")
                fh.flush()
            try:
                yield
            finally:
                if held:  # released normally: no holder named any more
                    fh.seek(0)
                    fh.truncate()
                    fh.flush()
                if created and not self.exists():
                    self.lock_file.unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        self.path.rmdir()
        finally:
            fh.close()

    def is_run(self) -> bool:
        return self.config.is_file() or self.status_file.is_file()

    def check_start(self, resume: bool, force: bool) -> bool:
        """Decide, before anything is written, whether this start resumes. Returns True to resume.

        Raises:
            AtustcError: the folder exists and neither ``resume`` nor ``force`` says what to do; or
                ``resume`` on a run without ``checkpoints/last.pt``; or ``force`` on a non-empty
                folder that is not a run folder (never deleted).
        """
        if not self.exists():
            if self.path.exists() and not self.path.is_dir():
                raise AtustcError(f"run folder {self.path} is a file")
            return False
        if force and not resume:
            if not self.is_run():
                raise AtustcError(f"{self.path} is not empty and is not a run folder; refusing to overwrite it")
            return False
        if resume:
            if not self.last.is_file():
                raise AtustcError(
                    f"run {self.path} has no checkpoints/last.pt to resume from; pass --force to start over"
                )
            if not self.config.is_file():
                raise AtustcError(f"run {self.path} has no config.json; cannot resume")
            return True
        raise AtustcError(f"run folder {self.path} exists; pass --resume to continue it or --force to start over")

    def reset(self) -> None:
        """Empty an existing run folder (after :meth:`check_start` allowed it) and create its layout."""
        if self.path.is_dir():
            for entry in self.path.iterdir():
                if entry.name == LOCK_NAME:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def read_config(self) -> dict[str, Any]:
        if not self.config.is_file():
            raise AtustcError(f"{self.path} is not a run folder (no config.json)")
        return read_json(self.config)

    def trained_root(self) -> str | None:
        """The image root the run was trained on (``config.json``), or None where there is none."""
        return read_json(self.config).get("root") if self.config.is_file() else None

    def read_status(self) -> dict[str, Any]:
        """status.json, or ``{}`` if there is none yet."""
        return read_json(self.status_file) if self.status_file.is_file() else {}

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into status.json (atomically); returns the new status."""
        status = self.read_status()
        status.update(fields)
        write_json_atomic(self.status_file, status)
        return status

    def log(self, message: str) -> None:
        """Append a time-stamped line to train.log."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        with self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {message}\n")

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line to metrics.jsonl."""
        with self.metrics.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

    def truncate_metrics(self, up_to_iter: int) -> None:
        """Keep only complete metrics lines with ``iter <= up_to_iter`` (after a resume)."""
        if not self.metrics.is_file():
            return
        kept = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["iter"] <= up_to_iter:
                    kept.append(line + "\n")
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a kill
        write_text_atomic(self.metrics, "".join(kept))
