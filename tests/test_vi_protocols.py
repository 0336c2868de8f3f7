"""The visible-infrared protocols against a plain AGW-style evaluation, hand cases and recorded trials.

The reference is a per-query loop written here after the AGW baseline's ``eval_sysu`` /
``eval_regdb`` / ``eval_llcm`` (Ye et al., TPAMI 2021; mangye16/Cross-Modal-Re-ID-baseline and
ZYK100/LLCM ``eval_metrics.py``): sort one query's gallery, drop what the dataset's rule drops,
CMC / AP / INP from what is left, averaged over queries, then over trials. It is scored on the
galleries the engine recorded, so both rank exactly the same sets.
"""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atustc.cli import main
from atustc.errors import AtustcError
from atustc.evaluate import evaluate
from atustc.features import Features, save_features
from atustc.galleries import load_galleries
from atustc.protocol import load_protocol, parse_protocol
from atustc.synth.layouts import write_layout
from atustc.table import save_table, validate_table
from atustc.trials import draw_gallery
from tests.reid_standin import features_for, index_root

SPECS = ("sysu-mm01", "sysu-mm01:all-settings", "regdb", "llcm", "llcm:atreid")


@pytest.fixture(scope="module")
def vi_tables(tmp_path_factory) -> dict[str, pd.DataFrame]:
    base = tmp_path_factory.mktemp("vi-proto")
    out = {}
    for name in ("sysu-mm01", "regdb", "llcm"):
        write_layout(base / name, name, seed=2)
        out[name] = index_root(name, base / name)
    return out


def agw_query(scores: np.ndarray, q: pd.Series, g: pd.DataFrame, rule: str) -> tuple | None:
    """(first_rank, AP, INP, identity_rank) of one query as eval_sysu / eval_llcm / eval_regdb compute it; None if no positive."""
    order = np.argsort(-scores.astype(np.float32), kind="stable")
    g_pid, g_cam = g["pid"].to_numpy()[order], g["camera"].to_numpy()[order]
    if rule == "sysu":
        remove = (q["camera"] == 3) & (g_cam == 2)
    elif rule == "llcm":
        remove = (g_pid == q["pid"]) & (g_cam == q["camera"])
    else:
        remove = np.zeros(len(g_pid), dtype=bool)
    kept = g_pid[~remove]
    match = (kept == q["pid"]).astype(int)
    if not match.any():
        return None
    cmc = match.cumsum()
    pos = np.flatnonzero(match)
    inp = cmc[pos[-1]] / (pos[-1] + 1.0)
    ap = float(np.sum((cmc / np.arange(1, len(cmc) + 1)) * match) / match.sum())
    _, first = np.unique(kept, return_index=True)
    identities = kept[np.sort(first)]  # distinct identities in rank order (the official CMC)
    return int(pos[0]) + 1, ap, float(inp), int(np.flatnonzero(identities == q["pid"])[0]) + 1


def agw_metrics(per_query: list) -> dict[str, float]:
    valid = [p for p in per_query if p is not None]
    out = {"valid_queries": len(valid), "mAP": np.mean([p[1] for p in valid]), "mINP": np.mean([p[2] for p in valid])}
    for k in (1, 5, 10, 20):
        out[f"R{k}"] = np.mean([p[0] <= k for p in valid])
        out[f"identity_R{k}"] = np.mean([p[3] <= k for p in valid])
    return out


def reference(spec: str, scenario: str, table: pd.DataFrame, feats: Features, galleries: list[list[str]]) -> dict:
    """AGW-style metrics of one scenario, averaged over the given galleries (one per run)."""
    name = spec.partition(":")[0]
    rule = {"sysu-mm01": "sysu", "llcm": "llcm" if spec == "llcm" else "none", "regdb": "none"}[name]
    x = feats.feat[:, 0].astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    pos = {r: i for i, r in enumerate(table["relpath"])}
    if name == "sysu-mm01":
        q_rows = np.flatnonzero((table["split"] == "query").to_numpy())
    else:
        query_modality = "rgb" if scenario in ("visible-to-thermal", "vis-to-nir") else "ir"
        q_rows = np.flatnonzero(((table["split"] == "test") & (table["modality"] == query_modality)).to_numpy())
    runs = []
    for gallery in galleries:
        g_rows = np.array(sorted(pos[r] for r in gallery))
        g = table.iloc[g_rows]
        runs.append(agw_metrics([agw_query(x[g_rows] @ x[i], table.iloc[i], g, rule) for i in q_rows]))
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


def full_gallery(spec: str, scenario: str, table: pd.DataFrame) -> list[str]:
    """RegDB's unsampled gallery: the other modality's test images."""
    modality = "ir" if scenario == "visible-to-thermal" else "rgb"
    return table.loc[(table["split"] == "test") & (table["modality"] == modality), "relpath"].tolist()


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("seed", [0, 1])
def test_engine_matches_the_agw_style_loop_on_the_recorded_galleries(vi_tables, spec, seed):
    table = vi_tables[spec.partition(":")[0]]
    feats = features_for(table, seed)
    result = evaluate(load_protocol(spec), table, feats)
    record = result.to_dict()
    for scenario, row in record["scenarios"].items():
        if "trials" in record:
            galleries = [r["gallery"] for r in record["trials"][scenario]]
        else:
            galleries = [full_gallery(spec, scenario, table)]
        ref = reference(spec, scenario, table, feats, galleries)
        assert row["valid_queries"] == round(ref["valid_queries"]) > 0
        for k in ("R1", "R5", "R10", "R20"):
            assert row[k] == pytest.approx(ref[k], abs=1e-12), (spec, scenario, k)
        assert row["R1"] == pytest.approx(ref["identity_R1"], abs=1e-12)  # the official identity CMC agrees at R1
        assert row["R20"] <= ref["identity_R20"] + 1e-12  # and can only be higher beyond
        for k in ("mAP", "mINP"):
            assert row[k] == pytest.approx(ref[k], abs=1e-9), (spec, scenario, k)
    for a in load_protocol(spec).aggregates:
        members = [record["scenarios"][s]["mAP"] for s in a.scenarios]
        assert record["summary"][a.name]["mAP"] == pytest.approx(np.mean(members), abs=1e-12)


# ---- hand-computed cases --------------------------------------------------------------------


def hand(rows: list[tuple[int, int, str, str]], queries: int = 1) -> tuple[pd.DataFrame, Features]:
    """(pid, camera, modality, split) rows; the first ``queries`` rows are queries at (1, 0), the k-th
    other row is at angle 0.1 k, so the others rank in table order for every query."""
    df = pd.DataFrame(rows, columns=["pid", "camera", "modality", "split"])
    df["dataset"], df["clothes"], df["date"], df["flag"], df["frame"] = "x", -1, -1, -1, np.arange(len(df))
    df["relpath"] = [f"img/{i:03d}.jpg" for i in range(len(df))]
    table = validate_table(df)
    feat = np.zeros((len(df), 1, 2), dtype=np.float32)
    for i in range(len(df)):
        k = max(i - queries + 1, 0)
        feat[i, 0] = (math.cos(0.1 * k), math.sin(0.1 * k))
    return table, Features(table["relpath"].to_numpy().astype(str), ("global",), feat)


def test_sysu_camera_3_query_loses_every_camera_2_image():
    # cam-3 query of pid 1; ranked RGB gallery: pid1 cam2 (removed), pid2 cam2 (removed), pid3 cam1, pid1 cam4
    table, feats = hand(
        [(1, 3, "ir", "query"), (1, 2, "rgb", "gallery"), (2, 2, "rgb", "gallery"), (3, 1, "rgb", "gallery"),
         (1, 4, "rgb", "gallery")]
    )  # fmt: skip
    r = evaluate(load_protocol("sysu-mm01"), table, feats).to_dict()["scenarios"]["all-search"]
    assert (r["R1"], r["R5"], r["mAP"], r["mINP"]) == (0.0, 1.0, 0.5, 0.5)
    cam6 = table.copy()
    cam6.loc[0, "camera"] = 6  # a camera-6 query keeps camera 2: pid1 cam2 is the first hit
    r6 = evaluate(load_protocol("sysu-mm01"), cam6, feats).to_dict()["scenarios"]["all-search"]
    assert r6["R1"] == 1.0 and r6["mAP"] == pytest.approx((1 + 2 / 4) / 2)
    # indoor: cameras 1 and 2 only: pid1's one image left is in camera 2 and removed -> no valid query
    ri = evaluate(load_protocol("sysu-mm01:indoor"), table, feats).to_dict()["scenarios"]["indoor"]
    assert ri["valid_queries"] == 0


def test_multi_shot_keeps_ten_per_identity_and_camera():
    rows = [(1, 3, "ir", "query")] + [(p, c, "rgb", "gallery") for p in (1, 2) for c in (1, 4) for _ in range(13)]
    rows += [(1, 5, "rgb", "gallery")] * 4
    table, _ = hand(rows)
    g = np.flatnonzero((table["split"] == "gallery").to_numpy())
    for trial in range(3):
        kept = table.iloc[draw_gallery(g, table, 10, 0, trial)]
        assert kept.groupby(["pid", "camera"]).size().to_dict() == {
            (1, 1): 10,
            (1, 4): 10,
            (1, 5): 4,
            (2, 1): 10,
            (2, 4): 10,
        }
    assert not np.array_equal(draw_gallery(g, table, 10, 0, 0), draw_gallery(g, table, 10, 0, 1))
    single = table.iloc[draw_gallery(g, table, 1, 0, 0)]
    assert len(single) == 5 and not single.duplicated(["pid", "camera"]).any()


def test_regdb_directions_are_named_by_their_query():
    # 2 visible queries (pid 1, 2) rank the thermal gallery in order pid2, pid1: V->T R1 = 0 for pid 1, 1 for pid 2;
    # reverse: thermal queries (rows 2, 3) rank the visible rows (0, 1) in table order: pid1 first
    table, feats = hand(
        [(1, 1, "rgb", "test"), (2, 1, "rgb", "test"), (2, 2, "ir", "test"), (1, 2, "ir", "test")], queries=0
    )
    feats.feat[:, 0] = [(1, 0), (0.6, 0.8), (0.8, 0.6), (0.0, 1.0)]  # unit vectors
    r = evaluate(load_protocol("regdb"), table, feats).to_dict()
    v2t, t2v = r["scenarios"]["visible-to-thermal"], r["scenarios"]["thermal-to-visible"]
    # visible pid1 (1, 0): thermal pid2 0.8 > pid1 0.0 -> rank 2; visible pid2 (.6, .8): pid2 0.96 > pid1 0.8 -> rank 1
    assert (v2t["R1"], v2t["mAP"]) == (0.5, pytest.approx((0.5 + 1) / 2))
    # thermal pid2 (.8,.6): visible pid1 .8 < pid2 .96 -> rank 1; thermal pid1 (0,1): pid2 .8 > pid1 0 -> rank 2
    assert (t2v["R1"], t2v["mAP"]) == (0.5, pytest.approx(0.75))
    one = evaluate(load_protocol("regdb:thermal-to-visible"), table, feats).to_dict()
    assert list(one["scenarios"]) == ["thermal-to-visible"] and one["scenarios"]["thermal-to-visible"] == t2v


def test_llcm_same_camera_across_modalities_is_junk_except_under_atreid():
    # VIS query pid1 cam1; NIR gallery: pid1 cam1 (junk in DEEN's rule), pid2 cam2, pid1 cam2
    table, feats = hand([(1, 1, "rgb", "test"), (1, 1, "ir", "test"), (2, 2, "ir", "test"), (1, 2, "ir", "test")])
    r = evaluate(load_protocol("llcm"), table, feats).to_dict()["scenarios"]["vis-to-nir"]
    assert (r["R1"], r["mAP"]) == (0.0, 0.5)
    a = evaluate(load_protocol("llcm:atreid"), table, feats).to_dict()["scenarios"]["vis-to-nir"]
    assert a["R1"] == 1.0  # single-shot per (pid, camera) keeps both pid-1 NIR images (cameras 1, 2)
    assert a["mAP"] == pytest.approx((1 + 2 / 3) / 2)


# ---- recorded trials ------------------------------------------------------------------------


def test_draws_do_not_depend_on_the_table_order(vi_tables):
    table = vi_tables["sysu-mm01"]
    feats = features_for(table, 0)
    shuffled = validate_table(table.sample(frac=1.0, random_state=3).reset_index(drop=True))
    a = evaluate(load_protocol("sysu-mm01"), table, feats).to_dict()
    b = evaluate(load_protocol("sysu-mm01"), shuffled, feats).to_dict()
    for ra, rb in zip(a["trials"]["all-search"], b["trials"]["all-search"], strict=True):
        assert sorted(ra["gallery"]) == sorted(rb["gallery"]) and ra["seed"] == rb["seed"] == [0, ra["trial"]]
    galleries = [frozenset(r["gallery"]) for r in a["trials"]["all-search"]]
    assert len(set(galleries)) == 10  # ten different draws


def test_recorded_galleries_rescore_to_the_same_numbers(vi_tables, tmp_path):
    table = vi_tables["llcm"]
    feats = features_for(table, 1)
    proto = load_protocol("llcm")
    first = evaluate(proto, table, feats).to_dict()
    path = tmp_path / "e.json"
    path.write_text(json.dumps(first))
    again = evaluate(proto, table, features_for(table, 1), galleries=load_galleries(path, proto, table)).to_dict()
    assert again["scenarios"] == first["scenarios"]
    assert [r["gallery"] for r in again["trials"]["vis-to-nir"]] == [
        r["gallery"] for r in first["trials"]["vis-to-nir"]
    ]
    assert again["trials"]["vis-to-nir"][0]["seed"] is None
    with pytest.raises(AtustcError, match=r"scored protocol 'llcm', not 'llcm:atreid'"):
        load_galleries(path, load_protocol("llcm:atreid"), table)
    first["trials"]["nir-to-vis"][2]["gallery"][0] = "test_vis/cam9/9999/x.jpg"
    path.write_text(json.dumps(first))
    with pytest.raises(
        AtustcError, match=r"scenario nir-to-vis run 2: image test_vis/cam9/9999/x.jpg is not in the table"
    ):
        load_galleries(path, proto, table)


def write_rand_perm(path: Path, table: pd.DataFrame, trials: int = 10, seed: int = 0) -> None:
    """A rand_perm_cam.mat shaped as the official file: a 6 x 1 cell of per-identity [trials, n] permutations."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    n_pid = int(table["pid"].max())
    cells = np.empty((6, 1), dtype=object)
    for cam in range(1, 7):
        per = np.empty((n_pid, 1), dtype=object)
        for pid in range(1, n_pid + 1):
            frames = table.loc[(table["pid"] == pid) & (table["camera"] == cam), "frame"].to_numpy().copy()
            per[pid - 1, 0] = np.array([rng.permutation(frames) for _ in range(trials)], dtype=np.float64).reshape(
                trials, -1
            )
        cells[cam - 1, 0] = per
    savemat(str(path), {"rand_perm_cam": cells})


def test_official_rand_perm_cam_file_gives_the_galleries(vi_tables, tmp_path):
    table = vi_tables["sysu-mm01"]
    mat = tmp_path / "rand_perm_cam.mat"
    write_rand_perm(mat, table)
    proto = load_protocol("sysu-mm01:all-settings")
    given = load_galleries(mat, proto, table)
    assert list(given) == ["all-search", "indoor", "all-search-multi-shot", "indoor-multi-shot"]
    for name, runs in given.items():
        shots = 10 if "multi" in name else 1
        cams = [1, 2] if name.startswith("indoor") else [1, 2, 4, 5]
        pool = table[(table["split"] == "gallery") & table["camera"].isin(cams)]
        expected = pool.groupby(["pid", "camera"]).size().clip(upper=shots).sum()
        for rows in runs:
            kept = table.iloc[rows]
            assert len(kept) == expected and set(kept["camera"]) <= set(cams)
    feats = features_for(table, 0)
    result = evaluate(proto, table, feats, galleries=given).to_dict()
    ref = reference("sysu-mm01", "all-search", table, feats, [r["gallery"] for r in result["trials"]["all-search"]])
    assert result["scenarios"]["all-search"]["mAP"] == pytest.approx(ref["mAP"], abs=1e-9)
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(AtustcError, match=r"bad.mat: not a SYSU-MM01 rand_perm_cam.mat file"):
        load_galleries(bad, proto, table)
    write_rand_perm(mat, table, trials=3)
    with pytest.raises(AtustcError, match=r"no permutation for camera \d, identity \d+, trial 4"):
        load_galleries(mat, proto, table)


def test_galleries_option_from_the_cli(vi_tables, tmp_path, capsys):
    table = vi_tables["sysu-mm01"]
    save_table(table, tmp_path / "t.parquet")
    save_features(features_for(table, 0), tmp_path / "f.npz")
    write_rand_perm(tmp_path / "rand_perm_cam.mat", table)
    base = ["eval", "--table", str(tmp_path / "t.parquet"), "--features", str(tmp_path / "f.npz"), "--no-progress"]
    main(
        [
            *base,
            "--protocol",
            "sysu-mm01",
            "--galleries",
            str(tmp_path / "rand_perm_cam.mat"),
            "--json",
            str(tmp_path / "a.json"),
        ]
    )
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["galleries"].endswith("rand_perm_cam.mat") and a["trials"]["all-search"][0]["seed"] is None
    main(
        [*base, "--protocol", "sysu-mm01", "--galleries", str(tmp_path / "a.json"), "--json", str(tmp_path / "b.json")]
    )
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["scenarios"] == a["scenarios"]
    with pytest.raises(SystemExit) as exc:
        main(
            [
                *base,
                "--protocol",
                "sysu-mm01:indoor",
                "--galleries",
                str(tmp_path / "a.json"),
                "--json",
                str(tmp_path / "c.json"),
            ]
        )
    assert exc.value.code == 2 and not (tmp_path / "c.json").exists()
    assert "scored protocol 'sysu-mm01', not 'sysu-mm01:indoor'" in capsys.readouterr().err


def test_sampling_schema_errors():
    base = {"scenarios": {"S": {"query": {"split": "query"}, "gallery": {"split": "gallery"}, "head": "h"}}}
    for sampling, message in (
        ({"mode": "single_shot", "trials": 2, "shots": 3}, r"S\.sampling\.shots: only multi_shot takes 'shots'"),
        ({"mode": "multi_shot", "trials": 2}, r"S\.sampling\.shots: missing"),
        ({"mode": "multi_shot", "trials": 2, "shots": 0}, r"S\.sampling\.shots: must be >= 1"),
    ):
        base["scenarios"]["S"]["sampling"] = sampling
        with pytest.raises(AtustcError, match=message):
            parse_protocol(base, "x.toml")


#: sha256 of the `atustc eval --json` file below, made with main at 1bf7a78 (before recorded trials)
ATUSTC_EVAL_SHA256 = "03feee8392bcef20e243481e033f3bcac30c22932981a9c70919668ccea1bc6a"


def test_atustc_eval_json_is_byte_identical_without_sampling(tmp_path, capsys):
    from tests.ranking_reference import exact_features, make_table

    table = make_table(4, n_pid=6, frames=3)
    save_table(table, tmp_path / "t.parquet")
    save_features(exact_features(4, table), tmp_path / "f.npz")
    main(["eval", "--table", str(tmp_path / "t.parquet"), "--features", str(tmp_path / "f.npz"),
          "--protocol", "atustc", "--json", str(tmp_path / "e.json"), "--no-progress"])  # fmt: skip
    data = (tmp_path / "e.json").read_bytes()
    assert "trials" not in json.loads(data)
    assert hashlib.sha256(data).hexdigest() == ATUSTC_EVAL_SHA256
    capsys.readouterr()


def test_shared_pool_scores_give_the_numbers_of_scoring_each_run(vi_tables, monkeypatch):
    import atustc.poolscores

    table = vi_tables["sysu-mm01"]
    feats = features_for(table, 1)
    proto = load_protocol("sysu-mm01:all-settings")
    shared = evaluate(proto, table, feats, top_k=5)
    monkeypatch.setattr(atustc.poolscores, "MAX_CELLS", 0)  # nothing fits: every run scores its own gallery
    alone = evaluate(proto, table, feats, top_k=5)
    assert shared.to_dict() == alone.to_dict()
    pd.testing.assert_frame_equal(shared.per_query, alone.per_query)
