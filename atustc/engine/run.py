"""The reproducibility manifest of a run (package versions, git commit, device, hashes).

The run folder's layout is :mod:`atustc.runfolder` (torch-free); :class:`RunFolder` is re-exported
here for older imports.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from atustc.methods.budget import STEM_INIT_ENV
from atustc.runfolder import RunFolder

__all__ = ["PACKAGES", "RESULT_ENV", "RunFolder", "build_manifest", "git_commit", "machine_info", "model_record"]

PACKAGES = ("atustc", "torch", "torchvision", "timm", "numpy", "pandas", "pyarrow", "pillow")
#: Environment variables that change what a run trains (recorded in the manifest when set).
RESULT_ENV = (STEM_INIT_ENV,)


def git_commit(path: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha | None, "dirty": bool | None}`` of the git checkout holding the package."""
    where = path or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": bool(dirty)}


def machine_info() -> dict[str, Any]:
    """The machine: CPU model, logical cores, torch threads and GPUs (cost figures are only comparable on one)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "gpus": gpus}


def build_manifest(seed: int, device: str, world: int, table_hash: str, split_hash: str) -> dict[str, Any]:
    """The reproducibility manifest of a run."""
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["torch"] = torch.__version__  # keeps the build tag (+cu130, +cpu)
    dev: dict[str, Any] = {"type": device, "world_size": world}
    if device == "cuda":
        dev["name"] = torch.cuda.get_device_name()
        dev["cuda"] = torch.version.cuda
        dev["cudnn"] = torch.backends.cudnn.version()
    else:
        dev["name"] = platform.processor() or platform.machine()
        dev["threads"] = torch.get_num_threads()
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "torch_cuda_build": torch.version.cuda,
        "git": git_commit(),
        "device": dev,
        "machine": machine_info(),
        "seed": seed,
        "table_hash": table_hash,
        "split_hash": split_hash,
        "environment": {k: os.environ[k] for k in RESULT_ENV if k in os.environ},
    }


def model_record(model: object) -> dict[str, Any]:
    """The architecture a method built: its model's dataclass configs (``config``, ``aim_config``, ...) as dicts.

    The same JSON round trip as the recipe's record; other values become strings, and so do
    non-finite floats (``"-inf"``), so the record stays plain JSON.
    """
    import dataclasses
    import json

    def plain(config: Any) -> Any:
        text = json.dumps(dataclasses.asdict(config), default=str)
        return json.loads(text, parse_constant=lambda constant: str(float(constant)))

    return {
        name: plain(value)
        for name, value in sorted(vars(model).items())
        if dataclasses.is_dataclass(value) and not isinstance(value, type)
    }
