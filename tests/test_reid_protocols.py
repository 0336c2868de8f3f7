"""The protocols of the six ReID datasets: hand-computed cases and a plain re-implementation of each rule.

Every protocol (and variant) is scored by ``atustc.evaluate.evaluate`` and compared with a
per-query loop written here from the dataset's rule, on the miniature's table with features
whose cosine scores are exact (ties broken by gallery order, as the engine does). Variants are
resolved by :func:`atustc.protocol.load_protocol`.
"""

import math

import numpy as np
import pandas as pd
import pytest

from atustc.evaluate import evaluate
from atustc.features import Features
from atustc.protocol import load_protocol
from atustc.synth.layouts import write_layout
from atustc.table import validate_table
from atustc.trials import draw_gallery
from tests.ranking_reference import reference_metrics, reference_query
from tests.reid_standin import features_for, index_root, miniature_root

#: protocol spec -> (scenario -> head)
SCENARIOS = {
    "market1501": {"single-query": "DT-ST"},
    "cuhk03": {"single-query": "DT-ST"},
    "msmt17": {"single-query": "DT-ST"},
    "prcc": {"same-clothes": "DT-ST", "clothes-change": "DT-LT"},
    "prcc:single-shot": {"same-clothes": "DT-ST", "clothes-change": "DT-LT"},
    "ltcc": {"general": "DT-ST", "clothes-change": "DT-LT"},
    "ltcc:atreid": {"general": "DT-LT", "clothes-change": "DT-LT"},
    "deepchange": {"all": "DT-LT"},
    "deepchange:atreid": {"all": "DT-LT"},
}


def hand_table(rows: list[tuple[int, int, int, str]], dataset: str = "x") -> tuple[pd.DataFrame, Features]:
    """A table of (pid, clothes, camera, split) rows and 2-d features: every query is (1, 0), the
    k-th gallery row is at angle 0.1 (k + 1), so gallery rows rank in table order for every query."""
    df = pd.DataFrame(rows, columns=["pid", "clothes", "camera", "split"])
    df["dataset"], df["modality"], df["date"], df["flag"] = dataset, "rgb", -1, -1
    df["frame"] = np.arange(len(df))
    df["relpath"] = [f"img/{i:03d}.jpg" for i in range(len(df))]
    table = validate_table(df)
    feat = np.zeros((len(df), 1, 2), dtype=np.float32)
    k = 0
    for i, split in enumerate(df["split"]):
        if split == "gallery":
            k += 1
            feat[i, 0] = (math.cos(0.1 * k), math.sin(0.1 * k))
        else:
            feat[i, 0] = (1.0, 0.0)
    return table, Features(table["relpath"].to_numpy().astype(str), ("global",), feat)


def scores(spec: str, table: pd.DataFrame, features: Features) -> dict[str, dict]:
    return {k: v for k, v in evaluate(load_protocol(spec), table, features).to_dict()["scenarios"].items()}


@pytest.mark.parametrize("spec", list(SCENARIOS))
def test_protocol_files_load_with_their_scenarios_and_heads(spec):
    proto = load_protocol(spec)
    assert {s.name: s.head for s in proto.scenarios} == SCENARIOS[spec]
    assert proto.metric == "cosine"


@pytest.mark.parametrize("name", ["market1501", "cuhk03", "msmt17"])
def test_market_style_hand_case(name):
    # query pid 1 cam 1; ranked gallery: pid1 cam1 (same camera: junk), pid2, pid1 cam2, pid0 distractor, pid1 cam3
    table, feats = hand_table(
        [
            (1, -1, 1, "query"),
            (1, -1, 1, "gallery"),
            (2, -1, 2, "gallery"),
            (1, -1, 2, "gallery"),
            (0, -1, 3, "gallery"),
            (1, -1, 3, "gallery"),
        ]
    )
    r = scores(name, table, feats)["single-query"]
    assert (r["R1"], r["R5"], r["valid_queries"]) == (0.0, 1.0, 1)
    assert r["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2) and r["mINP"] == pytest.approx(2 / 4)


def test_prcc_hand_case_a_gallery_b_and_c_queries():
    # gallery (camera A): pid2, pid1, pid3, pid1; query B (cam 2) and C (cam 3, other clothes) of pid 1
    table, feats = hand_table(
        [
            (1, 1, 2, "query"),
            (1, 2, 3, "query"),
            (2, 1, 1, "gallery"),
            (1, 1, 1, "gallery"),
            (3, 1, 1, "gallery"),
            (1, 1, 1, "gallery"),
        ]
    )
    r = scores("prcc", table, feats)
    for sc in ("same-clothes", "clothes-change"):
        assert (r[sc]["R1"], r[sc]["R5"], r[sc]["valid_queries"]) == (0.0, 1.0, 1)
        assert r[sc]["mAP"] == pytest.approx(0.5)
    # single-shot: one pid-1 image kept per draw, at rank 2 (row 3 drawn) or rank 3 (row 5 drawn)
    g = np.flatnonzero(table["split"] == "gallery")
    ranks = [2 if 3 in draw_gallery(g, table, 1, 3, t) else 3 for t in range(10)]
    r = scores("prcc:single-shot", table, feats)["clothes-change"]
    assert r["mAP"] == pytest.approx(np.mean([1 / k for k in ranks])) and r["R1"] == 0.0
    assert 2 in ranks and 3 in ranks  # both draws happen in 10 trials


def test_ltcc_hand_case_general_cc_and_atreid():
    # query pid1 clothes1 cam1; ranked gallery: pid1 c1 cam2 | pid2 c1 | pid1 c2 cam1 (same camera) | pid3 c1
    # (never changes clothes) | pid1 c2 cam3 | pid2 c2
    table, feats = hand_table(
        [
            (1, 1, 1, "query"),
            (1, 1, 2, "gallery"),
            (2, 1, 3, "gallery"),
            (1, 2, 1, "gallery"),
            (3, 1, 2, "gallery"),
            (1, 2, 3, "gallery"),
            (2, 2, 4, "gallery"),
        ]
    )
    r = scores("ltcc", table, feats)
    assert r["general"]["R1"] == 1.0 and r["general"]["mAP"] == pytest.approx((1 + 2 / 4) / 2)
    assert r["clothes-change"]["R1"] == 0.0 and r["clothes-change"]["mAP"] == pytest.approx(1 / 3)
    a = scores("ltcc:atreid", table, feats)["clothes-change"]  # pid 3 leaves the gallery
    assert a["R1"] == 0.0 and a["mAP"] == pytest.approx(1 / 2) and a["mINP"] == pytest.approx(1 / 2)


def test_deepchange_hand_case_same_tracklet_and_same_camera():
    # query pid1 cam1 tracklet key 11; ranked gallery: pid1 cam2 key 11 (same timestamp, other camera) |
    # pid1 cam1 key 11 | pid1 cam1 key 12 | pid2 | pid1 cam2 key 13
    table, feats = hand_table(
        [
            (1, 11, 1, "query"),
            (1, 11, 2, "gallery"),
            (1, 11, 1, "gallery"),
            (1, 12, 1, "gallery"),
            (2, 21, 2, "gallery"),
            (1, 13, 2, "gallery"),
        ]
    )
    d = scores("deepchange", table, feats)["all"]
    assert d["R1"] == 0.0 and d["mAP"] == pytest.approx(1 / 2)
    a = scores("deepchange:atreid", table, feats)["all"]  # same camera, other tracklet: a positive
    assert a["R1"] == 1.0 and a["mAP"] == pytest.approx((1 + 2 / 3) / 2) and a["mINP"] == pytest.approx(2 / 3)


# ---- plain re-implementation of each rule on the miniatures ---------------------------------


def plain_sets(spec: str, scenario: str, t: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Query and gallery rows of a scenario, written from the dataset's protocol."""
    q = (t["split"] == "query").to_numpy().copy()
    g = (t["split"] == "gallery").to_numpy().copy()
    if spec.startswith("prcc"):
        q &= (t["camera"] == (2 if scenario == "same-clothes" else 3)).to_numpy()
    if spec == "ltcc:atreid" and scenario == "clothes-change":
        test = t[(t["split"].isin(["query", "gallery"]))]
        changers = test.groupby("pid")["clothes"].nunique()
        cc = t["pid"].isin(changers[changers > 1].index).to_numpy()
        q, g = q & cc, g & cc
    return np.flatnonzero(q), np.flatnonzero(g)


def plain_junk(spec: str, scenario: str, q: pd.Series, g: pd.DataFrame) -> np.ndarray:
    same = g["pid"].to_numpy() == q["pid"]
    same_cam = same & (g["camera"].to_numpy() == q["camera"])
    same_clothes = same & (g["clothes"].to_numpy() == q["clothes"])
    if spec == "deepchange:atreid":
        return same_clothes  # kw66: no same-camera removal, same pid + same tracklet removed
    if spec == "deepchange" or (spec.startswith("ltcc") and scenario == "clothes-change"):
        return same_cam | same_clothes
    return same_cam


def plain_eval(spec: str, scenario: str, t: pd.DataFrame, f: Features) -> dict:
    qi, gi = plain_sets(spec, scenario, t)
    x = f.feat[:, 0].astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    trials = [gi] if spec != "prcc:single-shot" else [draw_gallery(gi, t, 1, 3, k) for k in range(10)]
    runs = []
    for g_rows in trials:
        g = t.iloc[g_rows]
        per_query = []
        for i in qi:
            q = t.iloc[i]
            s = x[g_rows] @ x[i]
            per_query.append(reference_query(s, g["pid"].to_numpy() == q["pid"], plain_junk(spec, scenario, q, g)))
        runs.append(reference_metrics(per_query))
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


@pytest.fixture(scope="module")
def mini_tables(tmp_path_factory) -> dict[str, pd.DataFrame]:
    base = tmp_path_factory.mktemp("proto-minis")
    out = {}
    for name in ("market1501", "cuhk03", "msmt17", "prcc", "ltcc", "deepchange"):
        write_layout(base / name, name, seed=1)
        out[name] = index_root(name, miniature_root(base / name, name))
    return out


@pytest.mark.parametrize("spec", list(SCENARIOS))
@pytest.mark.parametrize("seed", [0, 1])
def test_engine_matches_the_plain_rule_on_the_miniature(mini_tables, spec, seed):
    table = mini_tables[spec.partition(":")[0]]
    feats = features_for(table, seed)
    got = scores(spec, table, feats)
    for scenario in SCENARIOS[spec]:
        ref = plain_eval(spec, scenario, table, feats)
        row = got[scenario]
        assert row["valid_queries"] == round(ref["valid_queries"]) > 0, (spec, scenario)
        for k in ("R1", "R5", "R10", "R20"):
            assert row[k] == pytest.approx(ref[k], abs=1e-12), (spec, scenario, k)
        for k in ("mAP", "mINP"):
            assert row[k] == pytest.approx(ref[k], abs=1e-9), (spec, scenario, k)


def test_variants_change_what_they_say(mini_tables):
    """The atreid variants score differently from the defaults on the miniatures (the rules bite)."""
    for name in ("ltcc", "deepchange"):
        table = mini_tables[name]
        feats = features_for(table, 0)
        base, variant = scores(name, table, feats), scores(f"{name}:atreid", table, feats)
        key = "clothes-change" if name == "ltcc" else "all"
        assert base[key] != variant[key]
    ltcc_table = mini_tables["ltcc"]
    _, g = load_protocol("ltcc:atreid").scenarios[1].select(ltcc_table)
    assert set(ltcc_table.loc[g, "pid"]) == {p for p in ltcc_table["pid"].unique() if p % 2 and p > 6}
