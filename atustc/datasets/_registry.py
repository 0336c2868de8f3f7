"""The dataset registry: one :class:`DatasetSpec` per dataset, looked up by its ``--format`` name.

A dataset is one indexer module (its released layout -> the annotation table, ``split``
included), its protocol file(s) in ``protocols/`` and one registration line: the module calls
:func:`register_dataset` at its bottom and is named once in :data:`BUILTIN`.
:func:`atustc.datasets.index_dataset` turns a :class:`Scan` into a validated table and a manifest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from atustc.errors import AtustcError, unknown_name

#: The dataset modules of ``atustc/datasets`` that register a dataset (the one registration line).
BUILTIN: tuple[str, ...] = (
    "atustc_format",
    "market1501",
    "cuhk03",
    "msmt17",
    "prcc",
    "ltcc",
    "deepchange",
    "sysu_mm01",
    "regdb",
    "llcm",
)
#: ReID tasks of a dataset (:attr:`DatasetSpec.task`): person, clothes-changing, visible-infrared, AT-USTC.
Task = Literal["tr", "cc", "vi", "at"]
TASKS: tuple[str, ...] = ("tr", "cc", "vi", "at")


@dataclass
class Scan:
    """What an indexer found: column arrays for the table and the rejected files.

    Attributes:
        columns: every table column (``dataset``, ``relpath``, ``pid``, ..., ``split``), as
            arrays of equal length or a scalar for a constant column (e.g. ``dataset``).
            Unknown integers are -1, ``flag`` is -1 outside AT-USTC, ``modality`` is ``"rgb"``
            for a single-modality dataset; query and gallery rows carry ``split`` = ``"query"`` /
            ``"gallery"``, training rows ``"train"``.
        rejected: ``{"path": relpath, "code": short code, "reason": sentence}`` per rejected file.
        files_seen: every file the walk met (accepted + rejected).
    """

    columns: dict[str, Any]
    rejected: list[dict[str, str]]
    files_seen: int


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    Attributes:
        name: the ``--format`` name and the table's ``dataset`` value, e.g. ``"market1501"``.
        version: the indexer version, recorded in the manifest.
        description: one line for ``--help`` and the docs.
        scan: one pass over the released layout -> :class:`Scan` (``split`` included).
        protocol: the default protocol: a ``protocols/`` name or ``"NAME:VARIANT"``.
        task: the dataset's ReID task, which decides the head a multi-head model is scored with
            zero-shot (``atustc bench --cross-domain``, kw66/AT-ReID ``others/test_all.py``):
            ``"tr"`` person ReID (DT-ST), ``"cc"`` clothes-changing (DT-LT), ``"vi"``
            visible-infrared (AD-ST), ``"at"`` AT-USTC (each scenario its own head).
        scored: further protocols the harness scores besides the default.
        variants: the named protocol variants users can ask for (documentation and validation).
        validation: ``"flags"``: AT-USTC's split flags (flag 1 marks validation images);
            ``"release"``: the indexer's ``val`` rows (the release's own validation set, e.g.
            MSMT17's ``list_val.txt``); ``"fraction"``: a seeded share (``val_fraction``) of the
            train identities.
        val_fraction: the validation share of train identities.
        resplit: whether ``atustc split --strategy resplit`` makes sense for this dataset.
        published: the release's statistics per split, ``{split: {"identities": n, "images":
            n}}``; a key ``"a+b"`` counts the union of splits ``a`` and ``b``. ``atustc index``
            compares the table with them.
        layouts: release variants the indexer accepts (informational), e.g. ``("v1", "v2")``.
        headline: the scenario of the default protocol reported as the dataset's one number (the
            paper's cross-domain columns: PRCC and LTCC report their clothes-changing scenario);
            None: the protocol's first aggregate, else its first scenario.
    """

    name: str
    version: str
    description: str
    scan: Callable[[Path], Scan]
    protocol: str
    task: Task
    scored: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    validation: Literal["flags", "release", "fraction"] = "fraction"
    val_fraction: float = 0.2
    resplit: bool = False
    published: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    layouts: tuple[str, ...] = ()
    headline: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise AtustcError(f"dataset {self.name!r}: task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.validation not in ("flags", "release", "fraction"):
            raise AtustcError(
                f"dataset {self.name!r}: validation must be 'flags', 'release' or 'fraction', got {self.validation!r}"
            )
        if not 0.0 < self.val_fraction < 1.0:
            raise AtustcError(f"dataset {self.name!r}: val_fraction must be in (0, 1), got {self.val_fraction!r}")
        for split, counts in self.published.items():
            bad = [k for k in counts if k not in ("identities", "images")]
            if bad:
                raise AtustcError(
                    f"dataset {self.name!r}: published[{split!r}]: unknown count {bad[0]!r} "
                    "(expected identities, images)"
                )

    @property
    def protocols(self) -> tuple[str, ...]:
        """The default protocol, then the other scored ones (each once)."""
        return tuple(dict.fromkeys((self.protocol, *self.scored)))


_DATASETS: dict[str, DatasetSpec] = {}
_LOADED = False


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Register a dataset (a plain call at the bottom of its module). Returns ``spec``.

    Raises:
        AtustcError: the name is already registered.
    """
    if spec.name in _DATASETS:
        raise AtustcError(f"dataset {spec.name!r} is already registered")
    _DATASETS[spec.name] = spec
    return spec


def unregister_dataset(name: str) -> None:
    """Remove a registered dataset (for tests and plugins that register one temporarily)."""
    _DATASETS.pop(name, None)


def get_dataset(name: str) -> DatasetSpec:
    """The spec of a dataset; an unknown name raises with close matches."""
    _load_builtin()
    if name not in _DATASETS:
        raise unknown_name("dataset format", name, _DATASETS, "formats")
    return _DATASETS[name]


def list_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    _load_builtin()
    return sorted(_DATASETS)


def _load_builtin() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in BUILTIN:
        importlib.import_module(f"atustc.datasets.{module}")
