"""The protocol schema: validate a parsed TOML document and build the :class:`~atustc.protocol_model.Protocol`.

Every key and value the schema accepts is documented in :mod:`atustc.protocol`; a violation
raises one :class:`~atustc.errors.AtustcError` line naming the source file and the key.
"""

from __future__ import annotations

import difflib
from typing import Any

from atustc.errors import AtustcError
from atustc.protocol_model import Aggregate, JunkRule, Pool, Protocol, Sampling, Scenario
from atustc.table import COLUMNS, MODALITIES, SPLITS

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
