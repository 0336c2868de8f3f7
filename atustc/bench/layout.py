"""Leaderboard columns built from protocols: a protocol's scenarios and aggregates give its columns.

For the protocols a run was scored on (``split.json``'s ``scored``, the default first):

- the **main** (default) protocol gives ``R1``, ``mAP`` and ``mINP`` of each of its aggregates,
  then of each of its scenarios, in file order. Its *headline* is its first aggregate (its
  first scenario when it has none): the human-facing tables show R1/mAP of every aggregate and
  scenario, then the headline's mINP;
- every **other** protocol gives its *overall* group: the aggregate over all of its scenarios
  (else its last aggregate, else its first scenario), prefixed by the protocol's short label
  (the name without the main protocol's prefix, capitalised: ``atustc-mixed`` -> ``Mixed``), shown
  as R1/mAP.

For AT-USTC (``atustc``, ``atustc-mixed``) that is the paper's Table 4: Any-Time, DT-ST ... AD-LT,
Any-Time mINP, Mixed Anytime. Metric keys are ``<group>_<metric>``, e.g. ``DT-ST_R1`` or
``Mixed-Anytime_mAP``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from atustc.errors import AtustcError

if TYPE_CHECKING:
    from atustc.protocol import Protocol

RANK_METRICS: tuple[str, ...] = ("R1", "mAP", "mINP")


@dataclass(frozen=True)
class Column:
    """A displayed column: header group, header label, metric key (None for a text column)."""

    group: str
    label: str
    metric: str | None


@dataclass(frozen=True)
class Source:
    """Where a metric group comes from: ``result[kind][name]`` of protocol ``protocol``."""

    protocol: str
    kind: str  # "scenarios" | "summary"
    name: str
    members: tuple[str, ...] = ()  # an aggregate's scenarios (fallback when the summary lacks it)
    weight: str = "mean"


@dataclass(frozen=True)
class Layout:
    """The metric groups of a leaderboard and how they are displayed.

    Attributes:
        protocols: the protocols, main first.
        groups: metric group key (``Any-Time``, ``DT-ST``, ``Mixed-Anytime``) -> its source.
        display: the rank-metric columns of the human-facing tables, in order.
    """

    protocols: tuple[str, ...]
    groups: dict[str, Source]
    display: tuple[Column, ...]

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every rank-metric key, ``<group>_<metric>``, in column order."""
        return tuple(f"{g}_{m}" for g in self.groups for m in RANK_METRICS)

    def extract(self, results: Mapping[str, tuple[dict, Path]]) -> dict[str, float]:
        """The metrics of one run from its eval results ``{protocol: (result dict, path)}``.

        The main protocol's result is required and must hold every one of its scenarios; a
        missing other protocol gives no values. An aggregate absent from a result's summary
        is recomputed from its scenarios (unweighted, or weighted by valid queries).

        Raises:
            AtustcError: a missing scenario or a value that is not a fraction, naming the file.
        """
        out: dict[str, float] = {}
        for key, src in self.groups.items():
            if src.protocol not in results:
                continue
            result, path = results[src.protocol]
            block = (result.get(src.kind) or {}).get(src.name)
            if block is None and src.members:
                block = _recompute(result, src, path)
            if block is None:
                if src.kind == "scenarios" or src.protocol != self.protocols[0]:
                    raise AtustcError(f"{path}: no {src.name!r} in {src.kind}")
                continue
            out.update({f"{key}_{m}": v for m, v in metric_block(block, f"{path}: {src.name}").items()})
        return out

    def check(self, result: dict, path: Path) -> None:
        """Raise unless ``result`` holds every scenario of the main protocol (named in the error)."""
        scenarios = result.get("scenarios") or {}
        wanted = [s.name for s in self.groups.values() if s.kind == "scenarios" and s.protocol == self.protocols[0]]
        missing = [s for s in wanted if s not in scenarios]
        if missing:
            raise AtustcError(f"{path}: scenario(s) {', '.join(missing)} missing")


def metric_block(block: object, where: str) -> dict[str, float]:
    """``R1``/``mAP``/``mINP`` of a result block, checked to be fractions in [0, 1]."""
    if not isinstance(block, dict):
        raise AtustcError(f"{where}: expected an object of metrics, got {type(block).__name__}")
    out = {}
    for metric in RANK_METRICS:
        value = block.get(metric)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise AtustcError(f"{where}: {metric} must be a fraction in [0, 1], got {value!r}")
        out[metric] = float(value)
    return out


def _recompute(result: dict, src: Source, path: Path) -> dict[str, float] | None:
    scenarios = result.get("scenarios") or {}
    if not all(m in scenarios for m in src.members):
        return None
    blocks = [metric_block(scenarios[m], f"{path}: {m}") for m in src.members]
    if src.weight == "valid":
        weights = [float(scenarios[m].get("valid_queries") or 0) for m in src.members]
    else:
        weights = [1.0] * len(blocks)
    total = sum(weights)
    if total <= 0:
        return None
    present = [k for k in RANK_METRICS if all(k in b for b in blocks)]
    return {k: sum(w * b[k] for w, b in zip(weights, blocks, strict=True)) / total for k in present}


def short_label(main: str, other: str) -> str:
    """The column label of a secondary protocol: ``atustc-mixed`` under ``atustc`` -> ``Mixed``."""
    for sep in ("-", ":"):
        if other.startswith(main + sep) and len(other) > len(main) + 1:
            other = other[len(main) + 1 :]
            break
    return other[:1].upper() + other[1:]


@cache
def build_layout(protocols: tuple[str, ...]) -> Layout:
    """The layout of a leaderboard scored on ``protocols`` (main first), from the protocol files.

    Raises:
        AtustcError: an unknown protocol or variant, or no protocol at all.
    """
    from atustc.protocol import load_protocol

    if not protocols:
        raise AtustcError("a leaderboard needs at least one protocol")
    main = load_protocol(protocols[0])
    groups: dict[str, Source] = {}
    display: list[Column] = []
    for agg in main.aggregates:
        groups[agg.name] = Source(protocols[0], "summary", agg.name, agg.scenarios, agg.weight)
    for scen in main.scenarios:
        groups.setdefault(scen.name, Source(protocols[0], "scenarios", scen.name))
    for key in groups:
        display += [Column(key, "R1", f"{key}_R1"), Column(key, "mAP", f"{key}_mAP")]
    headline = next(iter(groups))
    display.append(Column(headline, "mINP", f"{headline}_mINP"))
    for name in protocols[1:]:
        other = load_protocol(name)
        label = short_label(main.name, other.name)
        key, src = _overall(other, name)
        group = f"{label}-{key}"
        if group in groups:
            continue
        groups[group] = src
        display += [Column(f"{label} {key}", "R1", f"{group}_R1"), Column(f"{label} {key}", "mAP", f"{group}_mAP")]
    return Layout(tuple(protocols), groups, tuple(display))


def _overall(protocol: Protocol, name: str) -> tuple[str, Source]:
    """The overall group of a secondary protocol (see the module docstring)."""
    scenarios = tuple(s.name for s in protocol.scenarios)
    aggregates = protocol.aggregates
    full = [a for a in aggregates if set(a.scenarios) == set(scenarios)]
    if full or aggregates:
        agg = (full or list(aggregates))[-1]
        return agg.name, Source(name, "summary", agg.name, agg.scenarios, agg.weight)
    return scenarios[0], Source(name, "scenarios", scenarios[0])


def merge_layouts(layouts: Sequence[Layout]) -> tuple[tuple[str, ...], tuple[Column, ...]]:
    """The union of several layouts' metric keys and display columns, first seen first."""
    metrics = tuple(dict.fromkeys(m for lay in layouts for m in lay.metrics))
    display = tuple(dict.fromkeys(c for lay in layouts for c in lay.display))
    return metrics, display
