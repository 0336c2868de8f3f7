"""Evaluation protocols as data: the TOML schema, its loader and validator, and compiled junk rules.

A protocol is a TOML file (named ones live in the ``protocols`` package). Every key::

    [protocol]
    name = "atustc"                  # optional; defaults to the file stem
    description = "..."              # optional
    metric = "cosine"                # cosine (default) | euclidean

    [pools.st-query]                 # named pools: filters on table columns, AND-ed
    flag = [2, 4]                    # a value or a list of allowed values
    modality = "rgb"

    [scenarios.DT-ST]                # scored in file order
    query = "st-query"               # a pool name or an inline filter table {split = "query"}
    gallery = "st-gallery"
    head = "DT-ST"                   # the feature head scored (a 1-head feature serves all)
    junk = [                         # what a kept pair must satisfy; failing pairs are junk
      { rule = "modality", value = "same_rgb", scope = "all" },
      { rule = "clothes", value = "same", scope = "same_pid" },
    ]
    directions = "forward"           # forward (default) | both (also gallery -> query; averaged)
    sampling = { mode = "single_shot", trials = 10, seed = 0 }   # optional gallery sampling
    # or { mode = "multi_shot", shots = 10, trials = 10, seed = 0 }
    same_camera_junk = true          # false: no always-on same-pid same-camera rule
    identities = "clothes_change"    # optional: only identities seen in > 1 outfit in the pools

    [aggregates.Any-Time]
    scenarios = ["DT-ST", "..."]
    weight = "mean"                  # mean (unweighted) | valid (weighted by valid queries)

Junk rules (``rule`` / ``value``): ``camera`` same|different, ``modality``
same_rgb|same_ir|cross|same, ``clothes`` same|change, ``date`` same|different, and
``camera_pair`` with ``pairs = [[query_camera, gallery_camera], ...]`` (the listed camera pairs
fail, e.g. SYSU-MM01's ``[[3, 2]]``). Scope ``all`` removes every failing pair, positives and
negatives; scope ``same_pid`` removes only failing same-identity pairs. One rule is always on and
needs no entry: a gallery entry of the query's identity seen by the query's camera is junk
(``same_camera_junk = false`` turns it off for a scenario). ``identities = "clothes_change"``
restricts query and gallery to the identities seen in more than one outfit among the
scenario's rows (LTCC's cloth-change set, as kw66/AT-ReID others/test_all.py scores it).

Named variants: ``[variants.NAME]`` tables in the same file, loaded as ``FILE:NAME`` and merged
over the base section by section (see :mod:`atustc.protocol_variants` and ``protocols/README.md``).

Gallery sampling ``single_shot`` keeps one random gallery image per (pid, camera) in each of
``trials`` trials, ``multi_shot`` keeps ``shots`` of them (all of a smaller group); trial ``t``
draws with ``numpy.random.default_rng([seed, t])`` over the gallery rows sorted by ``relpath``,
so a draw depends on neither the table's row order nor the machine (see
:func:`atustc.trials.draw_gallery`); metrics are averaged over trials and directions, and
every drawn gallery is recorded in the result (:attr:`atustc.evaluate.ProtocolResult.trials`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import tomllib

from atustc.errors import AtustcError
from atustc.table import COLUMNS, MODALITIES, SPLITS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch

Scope = Literal["all", "same_pid"]

#: rule -> allowed values (``camera_pair`` takes ``pairs`` instead of ``value``).
RULES: dict[str, tuple[str, ...]] = {
    "camera": ("same", "different"),
    "modality": ("same_rgb", "same_ir", "cross", "same"),
    "clothes": ("same", "change"),
    "date": ("same", "different"),
    "camera_pair": (),
}
SCOPES: tuple[str, ...] = ("all", "same_pid")
METRICS: tuple[str, ...] = ("cosine", "euclidean")
DIRECTIONS: tuple[str, ...] = ("forward", "both")
SAMPLING_MODES: tuple[str, ...] = ("single_shot", "multi_shot")
WEIGHTS: tuple[str, ...] = ("mean", "valid")
#: Values of a scenario's ``identities`` filter.
IDENTITY_FILTERS: tuple[str, ...] = ("clothes_change",)
#: Modality codes used in label tensors.
MODALITY_CODE: dict[str, int] = {m: i for i, m in enumerate(MODALITIES)}
#: Table columns a junk rule reads.
LABEL_COLUMNS: tuple[str, ...] = ("pid", "camera", "clothes", "date", "modality")

Labels = dict[str, "torch.Tensor"]
#: Same as :data:`atustc.ranking.PairJunk` (not imported here, to keep torch out of start-up).
PairJunk = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class Pool:
    """A set of table rows: column filters, all of which must hold."""

    name: str
    filters: tuple[tuple[str, tuple[int | str, ...]], ...]

    def select(self, table: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the table rows in the pool."""
        import numpy as np

        mask = np.ones(len(table), dtype=bool)
        for column, values in self.filters:
            mask &= table[column].isin(values).to_numpy()
        return mask

    def describe(self) -> str:
        """The filters as text, e.g. ``flag in [2, 4]``."""
        parts = [f"{c} = {v[0]!r}" if len(v) == 1 else f"{c} in {list(v)!r}" for c, v in self.filters]
        return " and ".join(parts) or "all rows"


@dataclass(frozen=True)
class JunkRule:
    """A condition kept pairs must satisfy; pairs failing it are junk within ``scope``."""

    rule: str
    value: str | None
    scope: Scope
    pairs: tuple[tuple[int, int], ...] = ()

    @property
    def column(self) -> str:
        """The label column the rule reads."""
        return "camera" if self.rule == "camera_pair" else self.rule

    def fails(self, q: Labels, g: Labels) -> torch.Tensor:
        """Bool: the (query, gallery) pairs that fail the rule.

        Args:
            q: query label tensors, gathered per pair (shapes broadcast with ``g``'s); numpy
                arrays work the same way (:mod:`atustc.coverage` counts with them).
            g: gallery label tensors, gathered per pair.
        """
        col = self.column
        if self.rule == "camera_pair":  # pairs is never empty (validated)
            out = None
            for qc, gc in self.pairs:
                hit = (q[col] == qc) & (g[col] == gc)
                out = hit if out is None else out | hit
            return out
        if self.rule == "modality" and self.value in ("same_rgb", "same_ir"):
            code = MODALITY_CODE[self.value.removeprefix("same_")]
            return ~((q[col] == code) & (g[col] == code))
        equal = q[col] == g[col]
        return ~equal if self.value == "same" else equal

    def allowed_gallery_modalities(self, query_modality: int) -> tuple[int, ...]:
        """For a scope-``all`` modality rule: the gallery modalities a query modality may meet."""
        codes = tuple(MODALITY_CODE.values())
        if self.value in ("same_rgb", "same_ir"):
            code = MODALITY_CODE[self.value.removeprefix("same_")]
            return (code,) if query_modality == code else ()
        if self.value == "cross":
            return tuple(c for c in codes if c != query_modality)
        return (query_modality,)

    @property
    def splits_by_modality(self) -> bool:
        """Whether this rule only restricts which modality blocks are compared at all."""
        return self.rule == "modality" and self.scope == "all"


#: The always-on rule: same identity and same camera is junk.
SAME_CAMERA_JUNK = JunkRule("camera", "different", "same_pid")


@dataclass(frozen=True)
class Sampling:
    """Gallery sampling: ``trials`` draws of ``shots`` images per (pid, camera) (1 for ``single_shot``)."""

    mode: str
    trials: int
    seed: int
    shots: int = 1


@dataclass(frozen=True)
class Scenario:
    """One query set ranked against one gallery set under junk rules, scored with one head."""

    name: str
    query: Pool
    gallery: Pool
    head: str
    junk: tuple[JunkRule, ...]
    directions: str = "forward"
    sampling: Sampling | None = None
    same_camera_junk: bool = True
    identities: str | None = None

    def rules(self) -> tuple[JunkRule, ...]:
        """The scenario's junk rules plus the always-on same-camera rule (unless ``same_camera_junk = false``)."""
        return (SAME_CAMERA_JUNK, *self.junk) if self.same_camera_junk else self.junk

    def select(self, table: pd.DataFrame, cache: dict[Pool, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks of the query and gallery rows: the pools, then the ``identities`` filter.

        ``identities = "clothes_change"`` keeps, in both, only the identities seen in more than
        one outfit among the pools' rows (query and gallery together). ``cache`` holds pool
        masks already computed on this table (filled as a side effect).
        """
        cache = {} if cache is None else cache
        for pool in (self.query, self.gallery):
            if pool not in cache:
                cache[pool] = pool.select(table)
        q, g = cache[self.query], cache[self.gallery]
        if self.identities == "clothes_change":
            rows = table[q | g]
            outfits = rows.groupby("pid")["clothes"].nunique()
            keep = table["pid"].isin(outfits.index[outfits > 1]).to_numpy()
            q, g = q & keep, g & keep
        return q, g

    def allowed_gallery_modalities(self, query_modality: int) -> tuple[int, ...]:
        """Gallery modalities left for a query modality by the scope-``all`` modality rules."""
        allowed = set(MODALITY_CODE.values())
        for rule in self.junk:
            if rule.splits_by_modality:
                allowed &= set(rule.allowed_gallery_modalities(query_modality))
        return tuple(sorted(allowed))

    def compile_junk(
        self, q: Labels, g: Labels, *, skip_modality_blocks: bool = False
    ) -> tuple[PairJunk | None, PairJunk | None]:
        """Compile the rules into the two :data:`atustc.ranking.PairJunk` functions of the ranking core.

        Args:
            q: query label tensors (keys of :data:`LABEL_COLUMNS`), indexed by query index.
            g: gallery label tensors, indexed by gallery index.
            skip_modality_blocks: leave out the scope-``all`` modality rules (the caller has
                already restricted the gallery to the allowed modality block).

        Returns:
            ``(junk_same, junk_other)``: junk among same-identity pairs (every rule applies) and
            among other pairs (only scope-``all`` rules apply; None when there are none).
        """
        rules = [r for r in self.rules() if not (skip_modality_blocks and r.splits_by_modality)]
        return _pair_junk(rules, q, g), _pair_junk([r for r in rules if r.scope == "all"], q, g)


def _pair_junk(rules: list[JunkRule], q: Labels, g: Labels) -> PairJunk | None:
    if not rules:
        return None
    columns = {r.column for r in rules}

    def junk(qi: torch.Tensor, gi: torch.Tensor) -> torch.Tensor:
        qa = {c: q[c][qi] for c in columns}
        ga = {c: g[c][gi] for c in columns}
        out = rules[0].fails(qa, ga)
        for rule in rules[1:]:
            out = out | rule.fails(qa, ga)
        return out

    return junk


@dataclass(frozen=True)
class Aggregate:
    """A summary row over scenarios: unweighted mean or weighted by valid queries."""

    name: str
    scenarios: tuple[str, ...]
    weight: str


@dataclass(frozen=True)
class Protocol:
    """A validated protocol."""

    name: str
    source: str
    description: str
    metric: str
    scenarios: tuple[Scenario, ...]
    aggregates: tuple[Aggregate, ...]

    @property
    def heads(self) -> tuple[str, ...]:
        """Heads used by the scenarios, in first-use order."""
        return tuple(dict.fromkeys(s.head for s in self.scenarios))


def available_protocols() -> list[str]:
    """Names of the protocols shipped in the ``protocols`` package."""
    return sorted(
        p.name.removesuffix(".toml") for p in resources.files("protocols").iterdir() if p.name.endswith(".toml")
    )


def load_protocol(name_or_path: str | os.PathLike[str]) -> Protocol:
    """Load and validate a protocol by name (a file in ``protocols/``), ``NAME:VARIANT``, or a path.

    ``NAME:VARIANT`` (also ``path/to/file.toml:VARIANT``) reads the ``[variants.VARIANT]`` table
    of the file and merges it over the base (see :func:`atustc.protocol_variants.apply_variant`); the protocol is then
    named ``NAME:VARIANT`` unless the variant sets ``protocol.name``.

    Raises:
        AtustcError: unknown name or variant, unreadable file, bad TOML or a schema violation
            (one line naming the file and the key).
    """
    text = str(name_or_path)
    base_text, variant = text, None
    if ":" in text and not os.path.exists(text):
        base_text, variant = text.rsplit(":", 1)
    source, raw, stem = _read_source(base_text)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AtustcError(f"{source}: not valid TOML ({exc})") from None
    if not isinstance(data.get("variants", {}), dict):
        raise AtustcError(f"{source}: variants: expected a table of variant tables")
    variants = data.pop("variants", {})
    if variant is None:
        return parse_protocol(data, source, default_name=stem)
    from atustc.protocol_variants import apply_variant

    merged = apply_variant(data, variants, variant, source)
    if "name" not in variants.get(variant, {}).get("protocol", {}):
        # the base's name would make a variant's eval files overwrite the base's
        base_name = data.get("protocol", {}).get("name", stem)
        merged.setdefault("protocol", {})["name"] = f"{base_name}:{variant}"
    return parse_protocol(merged, f"{source} [variants.{variant}]", default_name=f"{stem}:{variant}")


def protocol_variants(name_or_path: str | os.PathLike[str]) -> list[str]:
    """The variant names a protocol file defines, in file order."""
    source, raw, _ = _read_source(str(name_or_path))
    try:
        variants = tomllib.loads(raw.decode("utf-8")).get("variants", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AtustcError(f"{source}: not valid TOML ({exc})") from None
    return list(variants) if isinstance(variants, dict) else []


def _read_source(text: str) -> tuple[str, bytes, str]:
    """``(source name for messages, file bytes, file stem)`` of a protocol name or path."""
    path = Path(text)
    if path.suffix == ".toml" or os.sep in text or "/" in text:
        if not path.is_file():
            raise AtustcError(f"{path}: protocol file not found")
        return str(path), path.read_bytes(), path.stem
    names = available_protocols()
    if text not in names:
        close = difflib.get_close_matches(text, names, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(names)}"
        raise AtustcError(f"unknown protocol {text!r} ({hint}; or give a path to a .toml file)")
    return f"protocols/{text}.toml", resources.files("protocols").joinpath(f"{text}.toml").read_bytes(), text


def parse_protocol(data: dict[str, Any], source: str, default_name: str = "protocol") -> Protocol:
    """Validate a parsed TOML document and build the :class:`Protocol`.

    Raises:
        AtustcError: ``<source>: <key>: <problem>`` for the first problem found.
    """
    v = _Validator(source)
    v.keys(data, "", {"protocol", "pools", "scenarios", "aggregates"})
    head = v.table(data.get("protocol", {}), "protocol")
    v.keys(head, "protocol", {"name", "description", "metric"})
    name = v.string(head.get("name", default_name), "protocol.name")
    description = v.string(head.get("description", ""), "protocol.description")
    metric = v.choice(head.get("metric", "cosine"), "protocol.metric", METRICS)

    pools = {}
    for pool_name, filters in v.table(data.get("pools", {}), "pools").items():
        pools[pool_name] = v.pool(filters, f"pools.{pool_name}", pool_name)

    if "scenarios" not in data:
        raise AtustcError(f"{source}: scenarios: missing")
    raw_scenarios = v.table(data["scenarios"], "scenarios")
    if not raw_scenarios:
        raise AtustcError(f"{source}: scenarios: no scenario defined")
    scenarios = tuple(v.scenario(body, f"scenarios.{sname}", sname, pools) for sname, body in raw_scenarios.items())

    names = [s.name for s in scenarios]
    aggregates = []
    for agg_name, body in v.table(data.get("aggregates", {}), "aggregates").items():
        key = f"aggregates.{agg_name}"
        body = v.table(body, key)
        v.keys(body, key, {"scenarios", "weight"})
        members = v.required(body, "scenarios", key)
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise AtustcError(f"{source}: {key}.scenarios: expected a non-empty list of scenario names")
        for m in members:
            if m not in names:
                raise AtustcError(f"{source}: {key}.scenarios: unknown scenario {m!r} (scenarios: {', '.join(names)})")
        if agg_name in names:
            raise AtustcError(f"{source}: {key}: name clashes with a scenario")
        weight = v.choice(body.get("weight", "mean"), f"{key}.weight", WEIGHTS)
        aggregates.append(Aggregate(agg_name, tuple(members), weight))
    return Protocol(name, source, description, metric, scenarios, tuple(aggregates))


class _Validator:
    """Schema checks that raise one-line errors naming the source file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> AtustcError:
        return AtustcError(f"{self.source}: {key}: {problem}" if key else f"{self.source}: {problem}")

    def keys(self, body: dict[str, Any], key: str, allowed: set[str]) -> None:
        for k in body:
            if k not in allowed:
                close = difflib.get_close_matches(k, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(sorted(allowed))}"
                raise self.fail(f"{key}.{k}" if key else k, f"unknown key ({hint})")

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {type(value).__name__}")
        return value

    def required(self, body: dict[str, Any], name: str, key: str) -> Any:
        if name not in body:
            raise self.fail(f"{key}.{name}", "missing")
        return body[name]

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        return value

    def integer(self, value: Any, key: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {value}")
        return value

    def choice(self, value: Any, key: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(key, f"unknown value {value!r} (expected one of {', '.join(allowed)})")
        return value

    def pool(self, filters: Any, key: str, name: str) -> Pool:
        filters = self.table(filters, key)
        out = []
        for column, value in filters.items():
            ckey = f"{key}.{column}"
            if column not in COLUMNS:
                raise self.fail(ckey, f"unknown column (columns: {', '.join(COLUMNS)})")
            values = value if isinstance(value, list) else [value]
            if not values:
                raise self.fail(ckey, "empty list of values")
            want_int = COLUMNS[column] == "int64"
            for item in values:
                ok = (isinstance(item, int) and not isinstance(item, bool)) if want_int else isinstance(item, str)
                if not ok:
                    kind = "an integer" if want_int else "a string"
                    raise self.fail(ckey, f"expected {kind} or a list of them, got {item!r}")
            allowed = {"modality": MODALITIES, "split": SPLITS}.get(column)
            if allowed is not None:
                for item in values:
                    self.choice(item, ckey, allowed)
            out.append((column, tuple(values)))
        return Pool(name, tuple(out))

    def pool_ref(self, value: Any, key: str, pools: dict[str, Pool]) -> Pool:
        if isinstance(value, str):
            if value not in pools:
                known = ", ".join(pools) or "none defined"
                raise self.fail(key, f"unknown pool {value!r} (pools: {known})")
            return pools[value]
        return self.pool(value, key, key)

    def rule(self, body: Any, key: str) -> JunkRule:
        body = self.table(body, key)
        self.keys(body, key, {"rule", "value", "scope", "pairs"})
        rule = self.required(body, "rule", key)
        if rule not in RULES:
            close = difflib.get_close_matches(str(rule), RULES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.fail(f"{key}.rule", f"unknown rule {rule!r} ({hint}rules: {', '.join(RULES)})")
        scope = self.choice(self.required(body, "scope", key), f"{key}.scope", SCOPES)
        if rule == "camera_pair":
            if "value" in body:
                raise self.fail(f"{key}.value", "camera_pair takes 'pairs', not 'value'")
            pairs = self.required(body, "pairs", key)
            ok = (
                isinstance(pairs, list)
                and pairs
                and all(
                    isinstance(p, list)
                    and len(p) == 2
                    and all(isinstance(c, int) and not isinstance(c, bool) for c in p)
                    for p in pairs
                )
            )
            if not ok:
                raise self.fail(
                    f"{key}.pairs", f"expected a list of [query_camera, gallery_camera] pairs, got {pairs!r}"
                )
            return JunkRule(rule, None, scope, tuple((p[0], p[1]) for p in pairs))
        if "pairs" in body:
            raise self.fail(f"{key}.pairs", f"only camera_pair takes 'pairs', not {rule}")
        value = self.choice(self.required(body, "value", key), f"{key}.value", RULES[rule])
        return JunkRule(rule, value, scope)

    def scenario(self, body: Any, key: str, name: str, pools: dict[str, Pool]) -> Scenario:
        body = self.table(body, key)
        self.keys(
            body, key, {"query", "gallery", "head", "junk", "directions", "sampling", "same_camera_junk", "identities"}
        )
        query = self.pool_ref(self.required(body, "query", key), f"{key}.query", pools)
        gallery = self.pool_ref(self.required(body, "gallery", key), f"{key}.gallery", pools)
        head = self.string(self.required(body, "head", key), f"{key}.head")
        junk = body.get("junk", [])
        if not isinstance(junk, list):
            raise self.fail(f"{key}.junk", "expected a list of rule tables")
        rules = tuple(self.rule(r, f"{key}.junk[{i}]") for i, r in enumerate(junk))
        directions = self.choice(body.get("directions", "forward"), f"{key}.directions", DIRECTIONS)
        sampling = None
        if "sampling" in body:
            skey = f"{key}.sampling"
            s = self.table(body["sampling"], skey)
            self.keys(s, skey, {"mode", "trials", "seed", "shots"})
            mode = self.choice(self.required(s, "mode", skey), f"{skey}.mode", SAMPLING_MODES)
            trials = self.integer(self.required(s, "trials", skey), f"{skey}.trials", minimum=1)
            seed = self.integer(s.get("seed", 0), f"{skey}.seed", minimum=0)
            if mode == "single_shot":
                if "shots" in s:
                    raise self.fail(f"{skey}.shots", "only multi_shot takes 'shots' (single_shot keeps 1)")
                shots = 1
            else:
                shots = self.integer(self.required(s, "shots", skey), f"{skey}.shots", minimum=1)
            sampling = Sampling(mode, trials, seed, shots)
        same_camera = body.get("same_camera_junk", True)
        if not isinstance(same_camera, bool):
            raise self.fail(f"{key}.same_camera_junk", f"expected true or false, got {same_camera!r}")
        identities = body.get("identities")
        if identities is not None:
            identities = self.choice(identities, f"{key}.identities", IDENTITY_FILTERS)
        return Scenario(name, query, gallery, head, rules, directions, sampling, same_camera, identities)
