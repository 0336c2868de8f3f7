"""torch.distributed plumbing: read the torchrun environment, gather features, re-launch with torchrun.

A process started by ``torchrun`` (or ``atustc train --nproc N``, which runs torchrun) finds
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in its environment and joins a process group: NCCL on GPUs,
gloo on the CPU. Rank 0 alone writes the run folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from atustc.errors import AtustcError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def env_info() -> DistInfo:
    """The rank, world size and local rank torchrun put in the environment (1 process if absent)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def setup(info: DistInfo, device: torch.device) -> None:
    """Join the process group (no-op for one process)."""
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)


def teardown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def gather_rows(local: np.ndarray, info: DistInfo) -> np.ndarray:
    """Re-assemble rows sharded ``rows[rank::world]`` into the full array, on every rank."""
    if not info.enabled:
        return local
    parts: list[np.ndarray | None] = [None] * info.world
    dist.all_gather_object(parts, local)
    total = sum(len(p) for p in parts)  # type: ignore[arg-type]
    out = np.empty((total, *local.shape[1:]), dtype=local.dtype)
    for r, part in enumerate(parts):
        out[r :: info.world] = part
    return out


def resolve_device(device: str, info: DistInfo) -> torch.device:
    """``auto`` -> CUDA when available (this rank's GPU under torchrun), else CPU.

    Raises:
        AtustcError: CUDA asked for but not available, or an unknown device string.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise AtustcError(f"--device {device!r}: not a device (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise AtustcError(f"--device {device}: CUDA is not available on this machine")
        if dev.index is None:
            dev = torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
    elif dev.type != "cpu":
        raise AtustcError(f"--device {device!r}: only cpu and cuda are supported")
    return dev


def without_option(argv: Sequence[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE`` (torchrun would take ``--nproc`` for its own)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def launch(nproc: int, argv: Sequence[str]) -> None:
    """Run ``atustc <argv>`` in ``nproc`` processes through ``torch.distributed.run`` and wait.

    Raises:
        AtustcError: a worker failed (its error is in its output and the run's ``train.log``).
    """
    if nproc < 1:
        raise AtustcError(f"--nproc must be >= 1, got {nproc}")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "atustc.cli",
        *argv,
    ]
    env = dict(os.environ, ATUSTC_LAUNCHED="1")  # the workers leave the summary to this process
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    rc = subprocess.call(cmd, env=env)
    if rc != 0:
        out = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "-o")), None)
        where = f"; the workers' errors are above and in {out}/train.log" if out else "; the workers' errors are above"
        raise AtustcError(f"--nproc {nproc}: distributed training failed (torchrun exit status {rc}){where}")
