"""Protocols as data: the shipped files, validation errors, and evaluate() against plain references."""

import numpy as np
import pytest

from atustc.errors import AtustcError
from atustc.evaluate import evaluate
from atustc.features import Features
from atustc.protocol import load_protocol, parse_protocol, protocol_variants
from atustc.trials import draw_gallery
from ranking_reference import exact_features, make_table, path, reference_metrics, reference_scenario  # noqa: F401

METRICS = ("R1", "R5", "R10", "R20", "mAP", "mINP")


def assert_same(got: dict, ref: dict):
    assert got["valid_queries"] == ref["valid_queries"]
    for k in METRICS:
        assert got[k] == pytest.approx(ref[k], abs=1e-12), k


def feats(table, feat, relpaths):
    pos = {r: i for i, r in enumerate(table["relpath"])}
    return feat[[pos[r] for r in relpaths]]


# --- the shipped protocols ---------------------------------------------------------------


def test_atustc_protocol_is_the_official_six_scenario_test():
    p = load_protocol("atustc")
    assert p.name == "atustc" and p.metric == "cosine"
    assert [s.name for s in p.scenarios] == ["DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT"]
    official = {  # scenario: (query flags, gallery flags, modality rule, clothes rule)
        "DT-ST": ((2, 4), (6, 8), "same_rgb", "same"),
        "DT-LT": ((3, 5), (7, 9), "same_rgb", "change"),
        "NT-ST": ((2, 4), (6, 8), "same_ir", "same"),
        "NT-LT": ((3, 5), (7, 9), "same_ir", "change"),
        "AD-ST": ((2, 4), (6, 8), "cross", "same"),
        "AD-LT": ((3, 5), (7, 9), "cross", "change"),
    }
    for s in p.scenarios:
        qf, gf, mod, clothes = official[s.name]
        assert s.head == s.name
        assert s.query.filters == (("flag", qf),) and s.gallery.filters == (("flag", gf),)
        assert [(r.rule, r.value, r.scope) for r in s.junk] == [
            ("modality", mod, "all"),
            ("clothes", clothes, "same_pid"),
        ]
        assert s.sampling is None and s.directions == "forward"
    (agg,) = p.aggregates
    assert (agg.name, agg.weight, len(agg.scenarios)) == ("Any-Time", "mean", 6)


def test_mixed_protocol_groups_are_weighted_by_valid_queries():
    p = load_protocol("atustc-mixed")
    assert [a.name for a in p.aggregates] == ["Daytime", "Nighttime", "All-day", "Short-term", "Long-term", "Anytime"]
    assert all(a.weight == "valid" for a in p.aggregates)
    assert all(r.scope == "same_pid" for s in p.scenarios for r in s.junk)
    assert p.heads == ("AD-LT",)


def test_protocol_by_path_and_unknown_name(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[scenarios.A]\nquery = {split = "query"}\ngallery = {split = "gallery"}\nhead = "global"\n')
    assert load_protocol(f).name == "mine"
    with pytest.raises(AtustcError, match=r"unknown protocol 'atustc-mix' \(did you mean atustc-mixed"):
        load_protocol("atustc-mix")
    with pytest.raises(AtustcError, match="protocol file not found"):
        load_protocol(tmp_path / "nope.toml")


# --- validation: one line naming the file and the key --------------------------------------

BASE = '[scenarios.S]\nquery = {flag = 2}\ngallery = {flag = 6}\nhead = "h"\n'


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[scenarios.DT-ST]\nquery = {flag = 2}\ngallery = {flag = 6}\n", r"x\.toml: scenarios\.DT-ST\.head: missing$"),
        ("[protocol]\nname = 'x'\n", r"x\.toml: scenarios: missing"),
        (
            '[scenarios.S]\nquery = {flagg = 2}\ngallery = {flag = 6}\nhead = "h"\n',
            r"scenarios\.S\.query\.flagg: unknown column",
        ),
        ('[pools.p]\ncolor = "red"\n' + BASE, r"pools\.p\.color: unknown column"),
        ("[pools.p]\nflag = []\n" + BASE, r"pools\.p\.flag: empty list"),
        ('[pools.p]\nflag = "2"\n' + BASE, r"pools\.p\.flag: expected an integer"),
        ('[pools.p]\nmodality = "thermal"\n' + BASE, r"pools\.p\.modality: unknown value 'thermal'"),
        (BASE.replace("{flag = 2}", '"nopool"'), r"scenarios\.S\.query: unknown pool 'nopool'"),
        (
            BASE + 'junk = [{rule = "colour", value = "same", scope = "all"}]\n',
            r"scenarios\.S\.junk\[0\]\.rule: unknown rule 'colour'",
        ),
        (BASE + 'junk = [{rule = "clothes", value = "same"}]\n', r"scenarios\.S\.junk\[0\]\.scope: missing"),
        (
            BASE + 'junk = [{rule = "clothes", value = "same", scope = "pid"}]\n',
            r"junk\[0\]\.scope: unknown value 'pid'",
        ),
        (
            BASE + 'junk = [{rule = "modality", value = "rgb", scope = "all"}]\n',
            r"junk\[0\]\.value: unknown value 'rgb'",
        ),
        (
            BASE + 'junk = [{rule = "camera_pair", pairs = [[3]], scope = "all"}]\n',
            r"junk\[0\]\.pairs: expected a list of \[query_camera",
        ),
        (BASE + 'junk = [{rule = "camera", value = "same", scope = "all", why = 1}]\n', r"junk\[0\]\.why: unknown key"),
        (BASE + 'sampling = {mode = "single_shot", trials = 0}\n', r"scenarios\.S\.sampling\.trials: must be >= 1"),
        (BASE + 'sampling = {mode = "multi"}\n', r"scenarios\.S\.sampling\.mode: unknown value 'multi'"),
        (BASE + 'directions = "backward"\n', r"scenarios\.S\.directions: unknown value"),
        (BASE + 'heads = "h"\n', r"scenarios\.S\.heads: unknown key \(did you mean 'head'\?\)"),
        (BASE + '[aggregates.All]\nscenarios = ["S", "T"]\n', r"aggregates\.All\.scenarios: unknown scenario 'T'"),
        (
            BASE + '[aggregates.All]\nscenarios = ["S"]\nweight = "median"\n',
            r"aggregates\.All\.weight: unknown value 'median'",
        ),
        ('[protocol]\nmetric = "l1"\n' + BASE, r"protocol\.metric: unknown value 'l1'"),
        ("[scenarios\n", r"x\.toml: not valid TOML"),
        ("extra = 1\n" + BASE, r"x\.toml: extra: unknown key"),
    ],
)
def test_bad_protocol_files_give_one_line_naming_file_and_key(tmp_path, text, match):
    f = tmp_path / "x.toml"
    f.write_text(text)
    with pytest.raises(AtustcError, match=match) as info:
        load_protocol(f)
    assert "\n" not in str(info.value) and str(info.value).startswith(str(f))


# --- evaluate() against the official per-query rules ----------------------------------------

OFFICIAL = {  # (query flags, gallery flags, mode1, mode2) of others/test.py::attest
    "DT-ST": ((2, 4), (6, 8), "vm", "sc"),
    "DT-LT": ((3, 5), (7, 9), "vm", "cc"),
    "NT-ST": ((2, 4), (6, 8), "im", "sc"),
    "NT-LT": ((3, 5), (7, 9), "im", "cc"),
    "AD-ST": ((2, 4), (6, 8), "cm", "sc"),
    "AD-LT": ((3, 5), (7, 9), "cm", "cc"),
}


def official_attest(table, features):
    """The official six-scenario test, re-written from reference §3 as plain per-query code."""
    from ranking_reference import reference_query

    out = {}
    for h, (name, (qf, gf, mode1, mode2)) in enumerate(OFFICIAL.items()):
        q, g = table[table.flag.isin(qf)], table[table.flag.isin(gf)]
        qx = feats(table, features.feat[:, h], q.relpath)
        gx = feats(table, features.feat[:, h], g.relpath)
        qx, gx = qx / np.linalg.norm(qx, axis=1, keepdims=True), gx / np.linalg.norm(gx, axis=1, keepdims=True)
        dist = -(qx.astype(np.float64) @ gx.astype(np.float64).T)
        per_query = []
        for i in range(len(q)):
            qi = q.iloc[i]
            same = g.pid.to_numpy() == qi.pid
            remove = same & (g.camera.to_numpy() == qi.camera)
            gm = g.modality.to_numpy()
            if mode1 == "vm":
                remove |= ~((qi.modality == "rgb") & (gm == "rgb"))
            elif mode1 == "im":
                remove |= ~((qi.modality == "ir") & (gm == "ir"))
            else:
                remove |= gm == qi.modality
            same_clothes = g.clothes.to_numpy() == qi.clothes
            remove |= same & (~same_clothes if mode2 == "sc" else same_clothes)
            per_query.append(reference_query(-dist[i], same, remove))
        out[name] = reference_metrics(per_query)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_atustc_protocol_matches_official_rules(seed, path):
    table = make_table(seed, n_pid=6)
    features = exact_features(seed, table)
    got = evaluate(load_protocol("atustc"), table, features).to_dict()
    ref = official_attest(table, features)
    for name in OFFICIAL:
        assert_same(got["scenarios"][name], ref[name])
    any_time = got["summary"]["Any-Time"]
    assert any_time["mAP"] == pytest.approx(np.mean([ref[n]["mAP"] for n in OFFICIAL]), abs=1e-12)
    assert any_time["R1"] == pytest.approx(np.mean([ref[n]["R1"] for n in OFFICIAL]), abs=1e-12)
    assert any_time["valid_queries"] == sum(ref[n]["valid_queries"] for n in OFFICIAL)


def test_mixed_protocol_matches_its_rules_and_weights():
    table = make_table(7, n_pid=6)
    features = exact_features(7, table)
    protocol = load_protocol("atustc-mixed")
    got = evaluate(protocol, table, features).to_dict()
    mod = {"DT": ["rgb"], "NT": ["ir"], "AD": ["rgb", "ir"]}
    h = features.heads.index("AD-LT")
    per = {}
    for name in ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT"):
        st = name.endswith("ST")
        q = table[table.flag.isin((2, 4) if st else (3, 5)) & table.modality.isin(mod[name[:2]])]
        g = table[table.flag.isin((6, 8) if st else (7, 9))]
        mrule = {"DT": "same_rgb", "NT": "same_ir", "AD": "cross"}[name[:2]]
        rules = [
            {"rule": "modality", "value": mrule, "scope": "same_pid"},
            {"rule": "clothes", "value": "same" if st else "change", "scope": "same_pid"},
        ]
        per[name] = reference_scenario(
            q, g, feats(table, features.feat[:, h], q.relpath), feats(table, features.feat[:, h], g.relpath), rules
        )
        assert_same(got["scenarios"][name], reference_metrics(per[name]))
    for agg in protocol.aggregates:
        pooled = [r for n in agg.scenarios for r in per[n]]  # weighting by valid queries = pooling queries
        assert_same(got["summary"][agg.name], reference_metrics(pooled))


RULE_CHOICES = [
    {"rule": "camera", "value": "different"},
    {"rule": "camera", "value": "same"},
    {"rule": "modality", "value": "same_rgb"},
    {"rule": "modality", "value": "same_ir"},
    {"rule": "modality", "value": "cross"},
    {"rule": "modality", "value": "same"},
    {"rule": "clothes", "value": "same"},
    {"rule": "clothes", "value": "change"},
    {"rule": "date", "value": "same"},
    {"rule": "date", "value": "different"},
    {"rule": "camera_pair", "pairs": [[3, 2], [11, 4]]},
]


@pytest.mark.parametrize("seed", range(20))
def test_random_rule_and_scope_combinations_match_reference(seed, path):
    rng = np.random.default_rng(100 + seed)
    table = make_table(seed, n_pid=4, frames=1)
    features = exact_features(seed, table, heads=("global",))
    rules = [
        dict(RULE_CHOICES[i], scope=str(rng.choice(["all", "same_pid"])))
        for i in rng.choice(len(RULE_CHOICES), rng.integers(0, 4), replace=False)
    ]
    qflags, gflags = [2, 3, 4, 5], [6, 7, 8, 9]
    data = {
        "scenarios": {"S": {"query": {"flag": qflags}, "gallery": {"flag": gflags}, "head": "global", "junk": rules}},
    }
    got = evaluate(parse_protocol(data, "random.toml"), table, features, chunk_size=int(rng.integers(1, 40))).to_dict()
    q, g = table[table.flag.isin(qflags)], table[table.flag.isin(gflags)]
    ref = reference_scenario(
        q, g, feats(table, features.feat[:, 0], q.relpath), feats(table, features.feat[:, 0], g.relpath), rules
    )
    assert_same(got["scenarios"]["S"], reference_metrics(ref))


# --- gallery sampling and query directions ----------------------------------------------------


def test_single_shot_keeps_one_image_per_pid_and_camera():
    table = make_table(1, n_pid=5, frames=3)
    rows = np.flatnonzero(table.flag.isin([6, 7, 8, 9]).to_numpy())
    a, b, c = draw_gallery(rows, table, 1, 0, 0), draw_gallery(rows, table, 1, 0, 0), draw_gallery(rows, table, 1, 0, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    kept = table.iloc[a]
    assert not kept.duplicated(["pid", "camera"]).any()
    assert len(kept) == len(table.iloc[rows].drop_duplicates(["pid", "camera"]))
    assert np.all(np.diff(a) > 0)


def test_sampling_trials_and_both_directions_average_the_runs():
    table = make_table(3, n_pid=5, frames=3)
    features = exact_features(3, table, heads=("global",))
    data = {
        "scenarios": {
            "S": {
                "query": {"flag": [2, 3]},
                "gallery": {"flag": [6, 7]},
                "head": "global",
                "junk": [{"rule": "camera_pair", "pairs": [[3, 2]], "scope": "all"}],
                "directions": "both",
                "sampling": {"mode": "single_shot", "trials": 3, "seed": 5},
            }
        }
    }
    got = evaluate(parse_protocol(data, "s.toml"), table, features).to_dict()["scenarios"]["S"]
    q_rows = np.flatnonzero(table.flag.isin([2, 3]).to_numpy())
    g_rows = np.flatnonzero(table.flag.isin([6, 7]).to_numpy())
    rules = data["scenarios"]["S"]["junk"]
    runs = []
    for trial in range(3):
        for qr, gr in ((q_rows, g_rows), (g_rows, q_rows)):
            gs = draw_gallery(gr, table, 1, 5, trial)
            q, g = table.iloc[qr], table.iloc[gs]
            x = features.feat[:, 0]
            runs.append(reference_metrics(reference_scenario(q, g, x[qr], x[gs], rules)))
    for k in METRICS:
        assert got[k] == pytest.approx(np.mean([r[k] for r in runs]), abs=1e-12)
    assert got["valid_queries"] == round(np.mean([r["valid_queries"] for r in runs]))


# --- evaluation-time errors and the result contract -------------------------------------------


def test_empty_pool_names_the_scenario():
    table = make_table(0, n_pid=3, flags=(2, 6))
    features = exact_features(0, table)
    with pytest.raises(AtustcError, match=r"scenario DT-LT: query pool \(flag in \[3, 5\]\) matched no row"):
        evaluate(load_protocol("atustc"), table, features)


def test_missing_features_unknown_head_and_duplicates():
    table = make_table(0, n_pid=3)
    f = exact_features(0, table)
    needed = table.flag.isin([2, 3, 4, 5, 6, 7, 8, 9]).to_numpy()
    keep = ~needed
    keep[np.flatnonzero(needed)[3:]] = True  # drop the first 3 needed images
    partial = Features(f.relpath[keep], f.heads, f.feat[keep])
    first = table.relpath[np.flatnonzero(needed)[0]]
    with pytest.raises(
        AtustcError, match=rf"3 of the {needed.sum()} images the protocol needs have no feature \(first: {first}\)"
    ):
        evaluate(load_protocol("atustc"), table, partial)
    wrong = Features(f.relpath, ("a", "b", "c", "d", "e", "f"), f.feat)
    with pytest.raises(AtustcError, match=r"scenario DT-ST: features: unknown head 'DT-ST' \(have a, b"):
        evaluate(load_protocol("atustc"), table, wrong)
    dup = Features(np.concatenate([f.relpath, f.relpath[:1]]), f.heads, np.concatenate([f.feat, f.feat[:1]]))
    with pytest.raises(AtustcError, match="appears more than once"):
        evaluate(load_protocol("atustc"), table, dup)


def test_single_head_features_serve_every_scenario_and_result_contract():
    table = make_table(2, n_pid=4)
    six = exact_features(2, table)
    one = Features(six.relpath, ("global",), six.feat[:, 4:5])  # the AD-ST head only
    res = evaluate(load_protocol("atustc"), table, one)
    d = res.to_dict()
    assert list(d) == ["protocol", "scenarios", "summary"] and d["protocol"] == "atustc"
    assert list(d["summary"]) == ["Any-Time"]
    for row in [*d["scenarios"].values(), *d["summary"].values()]:
        assert list(row) == ["R1", "R5", "R10", "R20", "mAP", "mINP", "valid_queries"]
        assert all(0.0 <= row[k] <= 1.0 for k in METRICS) and isinstance(row["valid_queries"], int)
    ref_ad_st = evaluate(load_protocol("atustc"), table, six, progress=True).to_dict()["scenarios"]["AD-ST"]
    assert d["scenarios"]["AD-ST"] == ref_ad_st
    frame = res.to_frame()
    assert list(frame.name) == [*d["scenarios"], "Any-Time"]
    assert frame.loc[frame.name == "Any-Time", "mAP"].item() == pytest.approx(
        np.mean([r["mAP"] for r in d["scenarios"].values()])
    )


def test_schema_examples_in_protocols_readme_are_valid(tmp_path):
    import re
    from pathlib import Path

    import tomllib

    text = (Path(__file__).parents[1] / "protocols" / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        data = tomllib.loads(block)
        variants = data.pop("variants", {})
        p = parse_protocol(data, f"README block {i}")
        assert p.scenarios
        for name in variants:
            f = tmp_path / f"block{i}.toml"
            f.write_text(block)
            assert load_protocol(f"{f}:{name}").name == f"block{i}:{name}"


# --- variants: NAME:VARIANT merges [variants.VARIANT] over the base ------------------------

VARIANTS = """
[protocol]
description = "base"

[pools.q]
split = "query"
camera = [1, 2]

[scenarios.A]
query = "q"
gallery = {split = "gallery"}
head = "h"
junk = [{rule = "clothes", value = "change", scope = "same_pid"}]

[scenarios.B]
query = "q"
gallery = {split = "gallery"}
head = "h"

[aggregates.All]
scenarios = ["A", "B"]

[variants.one]
protocol = {description = "one", metric = "euclidean"}
pools.q = {camera = 3}
scenarios.A = {junk = [], directions = "both"}
scenarios.B = false
scenarios.C = {query = {split = "gallery"}, gallery = {split = "gallery"}, head = "g"}
aggregates.All = {scenarios = ["A", "C"], weight = "valid"}

[variants.nopool]
pools.q = {camera = false}

[variants.broken]
aggregates.All = {scenarios = ["B", "Z"]}
"""


def test_variant_merges_key_by_key_and_false_removes(tmp_path):
    f = tmp_path / "ds.toml"
    f.write_text(VARIANTS)
    base = load_protocol(f)
    assert base.name == "ds" and [s.name for s in base.scenarios] == ["A", "B"] and base.description == "base"
    v = load_protocol(f"{f}:one")
    assert v.name == "ds:one" and (v.description, v.metric) == ("one", "euclidean")
    assert [s.name for s in v.scenarios] == ["A", "C"]  # B removed, C appended
    a = v.scenarios[0]
    assert a.junk == () and a.directions == "both" and a.head == "h"  # replaced keys; the rest kept
    assert a.query.filters == (("split", ("query",)), ("camera", (3,)))  # pool column replaced, other kept
    assert (v.aggregates[0].scenarios, v.aggregates[0].weight) == (("A", "C"), "valid")
    assert load_protocol(f"{f}:nopool").scenarios[0].query.filters == (("split", ("query",)),)
    assert protocol_variants(f) == ["one", "nopool", "broken"]
    assert load_protocol(f).scenarios[0].query.filters[1] == ("camera", (1, 2))  # the base is untouched


@pytest.mark.parametrize(
    ("suffix", "match"),
    [
        (":two", r"ds\.toml: unknown variant 'two' \(variants: one, nopool, broken\)$"),
        (":broken", r"ds\.toml \[variants\.broken\]: aggregates\.All\.scenarios: unknown scenario 'Z'"),
    ],
)
def test_bad_variants_give_one_line(tmp_path, suffix, match):
    f = tmp_path / "ds.toml"
    f.write_text(VARIANTS)
    with pytest.raises(AtustcError, match=match) as info:
        load_protocol(f"{f}{suffix}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (BASE + "[variants.v]\nscenario = {}\n", r"variants\.v\.scenario: unknown section"),
        (BASE + "[variants]\nv = 3\n", r"variants\.v: expected a table"),
        ("variants = 1\n" + BASE, r"variants: expected a table of variant tables"),
    ],
)
def test_malformed_variant_tables(tmp_path, text, match):
    f = tmp_path / "x.toml"
    f.write_text(text)
    with pytest.raises(AtustcError, match=match):
        load_protocol(f"{f}:v")


def test_shipped_protocol_without_variants_names_the_file():
    with pytest.raises(
        AtustcError, match=r"^protocols/atustc\.toml: unknown variant 'x' \(variants: the file defines none\)$"
    ):
        load_protocol("atustc:x")


# --- scenario options: same_camera_junk and identities ----------------------------------------

OPTIONS_TABLE = [  # (relpath, pid, clothes, camera, split)
    ("q1", 1, 1, 1, "query"),
    ("q2", 2, 1, 1, "query"),
    ("q3", 3, 1, 1, "query"),
    ("g1a", 1, 1, 1, "gallery"),
    ("g1b", 1, 2, 2, "gallery"),  # pid 1: two outfits, one same-camera image
    ("g2a", 2, 1, 1, "gallery"),  # pid 2: one outfit, same camera only
    ("g3a", 3, 1, 2, "gallery"),
    ("g3b", 3, 1, 3, "gallery"),  # pid 3: one outfit
]


def options_table():
    import pandas as pd

    from atustc.table import validate_table

    df = pd.DataFrame(OPTIONS_TABLE, columns=["relpath", "pid", "clothes", "camera", "split"])
    df = df.assign(dataset="t", modality="rgb", date=-1, frame=-1, flag=-1)
    return validate_table(df)


def scenario_file(tmp_path, extra=""):
    f = tmp_path / "opt.toml"
    f.write_text('[scenarios.S]\nquery = {split = "query"}\ngallery = {split = "gallery"}\nhead = "h"\n' + extra)
    return f


def test_same_camera_junk_false_keeps_same_camera_positives(tmp_path):
    from atustc.coverage import protocol_counts

    table = options_table()
    # every image gets the same feature: ranks follow gallery order (ties keep table order)
    feats = Features(table["relpath"].to_numpy().astype(str), ("h",), np.ones((len(table), 1, 2), np.float32))
    on = evaluate(load_protocol(scenario_file(tmp_path)), table, feats).scenarios["S"]
    off_p = load_protocol(scenario_file(tmp_path, "same_camera_junk = false\n"))
    off = evaluate(off_p, table, feats).scenarios["S"]
    assert (on.valid_queries, off.valid_queries) == (2, 3)  # q2's only positive is same-camera
    # off: q1's positives g1a, g1b at ranks 1, 2; q2's g2a at rank 3; q3's g3a, g3b at ranks 4, 5
    assert off.mAP == pytest.approx(np.mean([1.0, 1 / 3, (1 / 4 + 2 / 5) / 2]))
    # on: q1 loses g1a and finds g1b at rank 1; q2 is invalid; q3 (camera 1) loses nothing
    assert on.mAP == pytest.approx(np.mean([1.0, (1 / 4 + 2 / 5) / 2]))
    assert protocol_counts(off_p, table)["S"].valid == 3 and off_p.scenarios[0].rules() == ()


def test_identities_clothes_change_keeps_identities_with_two_outfits(tmp_path):
    from atustc.coverage import protocol_counts

    table = options_table()
    p = load_protocol(scenario_file(tmp_path, 'identities = "clothes_change"\n'))
    q, g = p.scenarios[0].select(table)
    assert table["relpath"][q].tolist() == ["q1"] and table["relpath"][g].tolist() == ["g1a", "g1b"]
    feats = Features(table["relpath"].to_numpy().astype(str), ("h",), np.ones((len(table), 1, 2), np.float32))
    row = evaluate(p, table, feats).scenarios["S"]
    assert (row.queries, row.valid_queries, row.cmc[0]) == (1, 1, 1.0)
    assert protocol_counts(p, table)["S"].to_dict() == {"queries": 1, "valid": 1, "gallery": 2}


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ('same_camera_junk = "no"\n', r"scenarios\.S\.same_camera_junk: expected true or false"),
        ('identities = "all"\n', r"scenarios\.S\.identities: unknown value 'all' \(expected one of clothes_change\)"),
    ],
)
def test_bad_scenario_options(tmp_path, extra, match):
    with pytest.raises(AtustcError, match=match):
        load_protocol(scenario_file(tmp_path, extra))


def test_a_variant_is_named_name_colon_variant_even_when_the_base_sets_a_name(tmp_path):
    path = tmp_path / "named.toml"
    path.write_text(VARIANTS.replace("[protocol]\n", '[protocol]\nname = "base-name"\n', 1))
    assert load_protocol(path).name == "base-name"
    assert load_protocol(f"{path}:one").name == "base-name:one"  # its eval files never overwrite the base's
