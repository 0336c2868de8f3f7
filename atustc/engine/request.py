"""What a training run is asked to do: one :class:`TrainRequest` instead of sixteen keyword arguments.

The request holds the user's choices as given (names, paths, ``--set`` overrides); resolving and
checking them is :func:`atustc.engine.setup.prepare`'s job. This module is torch-free, so the
commands and the bench harness build requests without importing torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Amp = Literal["off", "bf16", "fp16"]
AMP_MODES: tuple[str, ...] = ("off", "bf16", "fp16")


@dataclass(frozen=True)
class TrainRequest:
    """One training run as asked for.

    Attributes:
        method: a registered method name.
        table: the annotation table (hash recorded; image root from its manifest if needed).
        split: a split folder (``atustc split``): trains on ``train``, validates on ``val-protocol``.
        preset: ``tiny`` or ``paper``.
        out: the run folder.
        seed: seeds model init, sampler, augmentation and every RNG.
        resume: continue from ``out/checkpoints/last.pt``.
        force: start over in an existing run folder (deleting it).
        root: image root; default: the split's recorded root, else the table manifest's.
        pretrained: local pretrained weights file, passed to the method's builder.
        overrides: recipe / engine overrides (see :mod:`atustc.engine.config`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: ``off``, ``bf16`` (CPU or GPU autocast) or ``fp16`` (GPU, with a gradient scaler).
        compile: wrap the training step in ``torch.compile``.
        plugins: modules to import first (they register extra methods).
        progress: show a rich progress bar (rank 0).
    """

    method: str
    table: Path
    split: Path
    preset: str
    out: Path
    seed: int = 0
    resume: bool = False
    force: bool = False
    root: Path | None = None
    pretrained: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"
    amp: Amp = "off"
    compile: bool = False
    plugins: tuple[str, ...] = ()
    progress: bool = True

    @classmethod
    def make(
        cls,
        method: str,
        table: str | os.PathLike[str],
        split: str | os.PathLike[str],
        preset: str,
        out: str | os.PathLike[str],
        **options: Any,
    ) -> TrainRequest:
        """A request from plain values (paths as strings, plugins as any sequence)."""
        for key in ("root", "pretrained"):
            if options.get(key) is not None:
                options[key] = Path(options[key])
        if "plugins" in options:
            options["plugins"] = tuple(_as_seq(options["plugins"]))
        options["overrides"] = dict(options.get("overrides") or {})
        return cls(method, Path(table), Path(split), preset, Path(out), **options)


def _as_seq(value: Sequence[str] | str) -> Sequence[str]:
    return (value,) if isinstance(value, str) else value


def request_argv(request: TrainRequest) -> list[str]:
    """The ``atustc train`` arguments of a request (``atustc bench --nproc`` launches them with torchrun).

    Every field maps to an option; a test checks that parsing these arguments gives the request back.
    """
    r = request
    argv = ["train", "--method", r.method, "--table", str(r.table), "--split", str(r.split), "--preset", r.preset,
            "--out", str(r.out), "--seed", str(r.seed), "--device", r.device, "--amp", r.amp]  # fmt: skip
    argv += ["--resume"] * r.resume + ["--force"] * r.force + ["--compile"] * r.compile + ["--quiet"] * (not r.progress)
    argv += ["--root", str(r.root)] if r.root is not None else []
    argv += ["--pretrained", str(r.pretrained)] if r.pretrained is not None else []
    for key, value in r.overrides.items():
        argv += ["--set", f"{key}={value}"]
    for mod in r.plugins:
        argv += ["--plugin", mod]
    return argv
