"""Splits: the per-clip rule, official pools, resplit invariants, validation errors, audit, CLI end to end."""

import json

import numpy as np
import pandas as pd
import pytest

from atustc.cli import main
from atustc.coverage import count_scenario, table_labels
from atustc.datasets import index_dataset, write_index
from atustc.errors import AtustcError
from atustc.protocol import load_protocol
from atustc.split import (
    POOLS,
    describe_split,
    load_split,
    make_split,
    select_clip_pools,
    split_identities,
    summary_frame,
    write_split,
)
from atustc.synth import SynthConfig, synthesize
from atustc.table import COLUMNS, validate_table


@pytest.fixture(scope="module")
def synth_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("split") / "demo"
    synthesize(root, SynthConfig.named("test"), progress=False)
    out = root.parent / "demo.parquet"
    write_index(index_dataset(root), out)
    return index_dataset(root).table, out


def rows(spec):
    """A table from (pid, clothes, camera, date, frame, flag) tuples."""
    df = pd.DataFrame(spec, columns=["pid", "clothes", "camera", "date", "frame", "flag"])
    df["dataset"] = "atustc"
    df["relpath"] = [f"p{p:03d}-d{d:02d}-c{c:02d}/cam{k:02d}-f{f}-{fr:04d}.jpg" for p, c, k, d, fr, f in spec]
    df["modality"] = np.where(df["camera"] <= 8, "rgb", "ir")
    df["split"] = "test"
    return validate_table(df[list(COLUMNS)])


# ---- the per-clip rule ----


def test_clip_rule_deals_3_3_3_3_then_rest():
    n = 14
    pid, cam, clothes = np.ones(n, int), np.full(n, 3), np.ones(n, int)
    flags = select_clip_pools(pid, cam, clothes, cam >= 9, np.ones(n, int), np.arange(n), seed=0)
    assert sorted(np.bincount(flags, minlength=11).tolist()) == sorted([0, 0, 3, 3, 0, 0, 3, 3, 0, 0, 2])
    assert np.bincount(flags, minlength=11)[[2, 3, 6, 7, 10]].tolist() == [3, 3, 3, 3, 2]
    ir = select_clip_pools(pid, np.full(n, 12), clothes, np.ones(n, bool), np.ones(n, int), np.arange(n), seed=0)
    assert np.bincount(ir, minlength=11)[[4, 5, 8, 9, 10]].tolist() == [3, 3, 3, 3, 2]
    five = select_clip_pools(pid[:5], cam[:5], clothes[:5], np.zeros(5, bool), np.ones(5, int), np.arange(5), seed=0)
    assert np.bincount(five, minlength=11)[[2, 6, 3, 7]].tolist() == [2, 1, 1, 1]  # dealt STq, STg, LTq, LTg, STq


def test_clip_rule_ignores_row_order_and_depends_on_seed(synth_table):
    t, _ = synth_table
    args = (
        [t[c].to_numpy() for c in ("pid", "camera", "clothes")]
        + [t["modality"].to_numpy() == "ir"]
        + [t[c].to_numpy() for c in ("date", "frame")]
    )
    f0 = select_clip_pools(*args, seed=0, relpath=t["relpath"].to_numpy())
    perm = np.random.default_rng(1).permutation(len(t))
    f_perm = select_clip_pools(*(a[perm] for a in args), seed=0, relpath=t["relpath"].to_numpy()[perm])
    assert (f_perm == f0[perm]).all()
    assert (select_clip_pools(*args, seed=1, relpath=t["relpath"].to_numpy()) != f0).any()


def test_split_identities_is_one_to_one_with_20_percent_val():
    ids = split_identities(np.arange(1, 271), seed=0)
    assert (len(ids["test"]), len(ids["val"]), len(ids["train"])) == (135, 27, 108)
    assert len(np.union1d(np.union1d(ids["test"], ids["val"]), ids["train"])) == 270
    assert not (split_identities(np.arange(1, 271), seed=1)["test"] == ids["test"]).all()


# ---- official split on the synthetic set ----


def test_official_pools_equal_the_flag_rules(synth_table, tmp_path):
    t, _ = synth_table
    split = make_split(t)
    out = write_split(split, tmp_path / "s")
    flag = t["flag"].to_numpy()
    for pool, flags in POOLS.items():
        listed = (out / "lists" / f"{pool}.txt").read_text().splitlines()
        assert listed == t["relpath"][np.isin(flag, flags)].tolist(), pool
    assert len(split.train) == (flag == 0).sum() and len(split.val) == (flag == 1).sum()
    assert len(split.test) == (flag >= 2).sum()
    # the AD pools are the union of the DT and NT pools of the same term
    lines = {p: set((out / "lists" / f"{p}.txt").read_text().splitlines()) for p in POOLS}
    assert lines["q_ad_st"] == lines["q_dt_st"] | lines["q_nt_st"]
    assert lines["g_ad_lt"] == lines["g_dt_lt"] | lines["g_nt_lt"]
    frame = summary_frame(split).set_index("set")
    assert frame.loc["q_dt_st", "images"] == (flag == 2).sum() and frame.loc["q_dt_st", "ir_images"] == 0
    assert frame.loc["test", "identities"] == t.loc[flag >= 2, "pid"].nunique()


def test_val_protocol_reflags_val_rows_by_the_clip_rule(synth_table):
    split = make_split(synth_table[0], seed=4)
    vp = split.val_protocol
    assert vp["relpath"].tolist() == split.val["relpath"].tolist()
    assert set(vp["flag"]) <= set(range(2, 11)) and set(vp["split"]) <= {"query", "gallery", "test"}
    arrays = [vp[c].to_numpy() for c in ("pid", "camera", "clothes")] + [vp["modality"].to_numpy() == "ir"]
    arrays += [vp[c].to_numpy() for c in ("date", "frame")]
    expected = select_clip_pools(*arrays, seed=4, relpath=vp["relpath"].to_numpy())
    assert (vp["flag"].to_numpy() == expected).all()
    assert all(s["valid"] > 0 for s in split.info["summary"]["val_scenarios"].values())


def test_valid_queries_match_a_brute_force_count(synth_table):
    """The protocol engine's valid-query count against the six rules written out by hand."""
    t = make_split(synth_table[0], "resplit", seed=2).table
    p, c, k, f = (t[x].to_numpy() for x in ("pid", "clothes", "camera", "flag"))
    ir = t["modality"].to_numpy() == "ir"
    labels = table_labels(t)
    rng = np.random.default_rng(0)
    for s in load_protocol("atustc").scenarios:
        term, time = s.name[3:], s.name[:2]
        qf, gf = ((2, 4), (6, 8)) if term == "ST" else ((3, 5), (7, 9))
        gal = np.isin(f, gf)
        q_all = np.flatnonzero(np.isin(f, qf))
        expect_valid = 0
        for q in q_all:
            g = gal & (p == p[q]) & (k != k[q])
            g &= (c == c[q]) if term == "ST" else (c != c[q])
            g &= {"DT": ~ir & ~ir[q], "NT": ir & ir[q], "AD": ir != ir[q]}[time]
            expect_valid += bool(g.any())
        got = count_scenario(s, labels, np.isin(f, qf), gal)
        reach = {"DT": ~ir, "NT": ir, "AD": np.ones_like(ir)}[time]
        assert (got.valid, got.queries, got.gallery) == (
            expect_valid,
            int(reach[q_all].sum()),
            int((gal & reach).sum()),
        )
        for q in rng.choice(q_all, 20, replace=False):  # one query at a time: valid iff it has a positive
            one = count_scenario(s, labels, np.array([q]), gal)
            g = gal & (p == p[q]) & (k != k[q]) & ((c == c[q]) if term == "ST" else (c != c[q]))
            g &= {"DT": ~ir & ~ir[q], "NT": ir & ir[q], "AD": ir != ir[q]}[time]
            assert one.valid == int(g.any())


# ---- resplit invariants ----


def test_resplit_invariants(synth_table):
    t, _ = synth_table
    a, b, c = (make_split(t, "resplit", seed=s) for s in (5, 5, 6))
    assert a.table.equals(b.table)
    assert not a.table["flag"].equals(c.table["flag"])
    n_ids = t["pid"].nunique()
    audit = describe_split(a)
    assert audit["sets"]["test"]["identities"] == n_ids // 2
    assert audit["sets"]["val"]["identities"] == round(0.2 * (n_ids - n_ids // 2))
    assert audit["kind"] == "disjoint-set"
    for pair in ("train|val", "train|test", "val|test"):
        assert audit["pairs"][pair]["shared_identities"] == 0
    for pair in ("query|gallery", "st_query|st_gallery", "lt_query|lt_gallery"):
        assert audit["pairs"][pair]["shared_images"] == 0 and audit["pairs"][pair]["identity_relation"] == "same"
    test = a.test
    clip = test.groupby(["pid", "camera", "clothes"])
    for flags in ((2, 4), (6, 8), (3, 5), (7, 9)):
        per_clip = test[test["flag"].isin(flags)].groupby(["pid", "camera", "clothes"]).size()
        assert per_clip.max() <= 3
    sizes = clip.size()
    selected = test[test["flag"] != 10].groupby(["pid", "camera", "clothes"]).size()
    assert (selected == np.minimum(sizes, 12)).all()
    assert all(s["valid"] > 0 for s in a.info["summary"]["scenarios"].values())


def test_write_load_round_trip(synth_table, tmp_path):
    t, table_path = synth_table
    split = make_split(t, "resplit", seed=3, root="/data/x")
    out = write_split(split, tmp_path / "s")
    back = load_split(out)
    for attr in ("table", "train", "val", "test", "val_protocol"):
        assert getattr(back, attr).equals(getattr(split, attr)), attr
    info = json.loads((out / "split.json").read_text())
    assert info["root"] == "/data/x" and info["strategy"] == "resplit" and info["seed"] == 3
    assert info["summary"]["identities"]["test"] == t["pid"].nunique() // 2


# ---- validation failures ----

BASE = [  # two test people, each: 2 outfits x (2 RGB + 2 IR cameras); one train person
    (p, o, cam, 1, 100 * cam + o, fl)
    for p in (1, 2)
    for o in (1, 2)
    for cam, fl in ((1, 2), (2, 6), (9, 4), (10, 8), (3, 3), (4, 7), (11, 5), (12, 9))
] + [(3, 1, 1, 1, 1, 0), (3, 1, 9, 1, 2, 1)]


def test_hand_built_table_is_valid_and_counts_are_exact():
    split = make_split(rows(BASE))
    s = split.info["summary"]["scenarios"]
    # DT-ST: RGB queries (flag 2) = 2 people x 2 outfits; each has 1 positive (cam 2, same outfit)
    assert s["DT-ST"] == {"queries": 4, "valid": 4, "gallery": 4}
    assert s["AD-LT"] == {"queries": 8, "valid": 8, "gallery": 8}
    assert split.info["summary"]["protocols"]["atustc-mixed"]["AD-LT"] == {"queries": 8, "valid": 8, "gallery": 8}
    assert split.info["protocols"] == {
        "default": "atustc",
        "scored": ["atustc", "atustc-mixed"],
        "validation": "atustc",
    }
    assert split.info["dataset"] == "atustc"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s + [(1, 1, 5, 2, 9, 0)], "1 identities are in both train and test, e.g. pid 1"),
        (
            lambda s: s + [(1, 1, 1, 1, 101, 6)],
            "image in two pools: .* are the same pid, clothes, camera, date and frame",
        ),
        (
            lambda s: [r for r in s if r[5] != 8],
            "protocol atustc: scenario NT-ST has no query with a valid positive \\(4 queries, 0 gallery images\\)",
        ),
        (
            lambda s: [r for r in s if not (r[5] in (3, 7) and r[1] == 2)],  # LT images of one outfit only
            "scenario DT-LT has no query with a valid positive \\(2 queries, 2 gallery images\\)",
        ),
        (lambda s: s + [(4, 1, 1, 1, 1, -1)], "row .*flag -1 is not an AT-USTC flag 0-10; use --strategy resplit"),
        (lambda s: [r for r in s if r[5] <= 1], "the split has no test images"),
    ],
)
def test_validation_failures(edit, message):
    with pytest.raises(AtustcError, match=message):
        make_split(rows(edit(list(BASE))))


def test_bad_strategy_and_empty_table():
    with pytest.raises(AtustcError, match="--strategy must be one of official, resplit, got 'random'"):
        make_split(rows(BASE), "random")  # type: ignore[arg-type]
    with pytest.raises(AtustcError, match="the table is empty"):
        make_split(rows(BASE).iloc[:0])


# ---- CLI end to end ----


def test_cli_synth_index_split_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    main(["synth", "demo", "--size", "test", "-q"])
    main(["index", "demo", "-o", "demo.parquet", "-q"])
    main(["split", "demo.parquet", "-o", "demo-split", "--describe"])
    out = capsys.readouterr().out
    assert "q_ad_lt" in out and "disjoint-set" in out and "wrote demo-split (official, seed 0)" in out
    info = json.loads((tmp_path / "demo-split" / "split.json").read_text())
    assert info["root"] == str((tmp_path / "demo").resolve())
    record = json.loads((tmp_path / "demo-split" / "describe.json").read_text())
    assert record["pairs"]["train|test"]["shared_identities"] == 0
    main(["split", "demo-split", "--describe"])  # audit an existing split folder
    assert "disjoint-set" in capsys.readouterr().out
    main(["split", "demo.parquet", "-o", "re", "--strategy", "resplit", "--seed", "9"])
    assert json.loads((tmp_path / "re" / "split.json").read_text())["seed"] == 9


@pytest.mark.parametrize(
    "args, message",
    [
        (["split", "demo.parquet"], "missing -o/--output"),
        (["split", "nothing.parquet", "-o", "x"], "nothing.parquet: table not found"),
        (["split", ".", "-o", "x"], "is a folder; pass a table .parquet"),
        (["split", ".", "--describe"], "not a split folder \\(no split.json\\)"),
    ],
)
def test_cli_errors_exit_2(tmp_path, monkeypatch, capsys, synth_table, args, message):
    import re
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copy(synth_table[1], tmp_path / "demo.parquet")
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and re.search(message, err), err


def test_row_keys_group_like_tuples_even_when_packing_would_overflow():
    from atustc.split.keys import row_keys

    small = row_keys(np.array([1, 1, 2, -1]), np.array([5, 6, 5, 5]))
    assert small.tolist() == [4, 5, 6, 0]  # packed: (pid + 1) * 2 + (clothes - 5)
    big = row_keys(np.array([2**40, 5, 2**40]), np.array([3, 2**40, 3]), np.array([1, 2, 1]))
    assert big[0] == big[2] != big[1]


def test_a_table_of_an_unregistered_dataset_needs_dataset():
    t = rows(BASE).assign(dataset="mine")
    with pytest.raises(AtustcError, match="table: unknown dataset format 'mine'.*; pass --dataset NAME"):
        make_split(t)
    split = make_split(t, dataset="atustc")
    assert split.info["dataset"] == "atustc" and split.info["summary"]["scenarios"]["DT-ST"]["valid"] == 4
    with pytest.raises(AtustcError, match="holds rows of 2 datasets \\(atustc, mine\\)"):
        make_split(pd.concat([rows(BASE), t.assign(relpath=t["relpath"] + "x")], ignore_index=True))


def test_cli_split_refuses_a_non_empty_folder_unless_overwrite(tmp_path, monkeypatch, capsys, synth_table):
    import shutil

    import atustc.split

    monkeypatch.chdir(tmp_path)
    shutil.copy(synth_table[1], tmp_path / "demo.parquet")
    main(["split", "demo.parquet", "-o", "s"])
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir() if p.is_file()}
    with pytest.raises(SystemExit) as exc:
        main(["split", "demo.parquet", "-o", "s", "--strategy", "resplit", "--seed", "3"])
    assert exc.value.code == 2
    assert "s: folder exists and is not empty; pass --overwrite to replace it" in capsys.readouterr().err

    def half_written(split, out):  # dies after writing part of the new split
        (out / "split.json").write_text("{}")
        raise RuntimeError("killed")

    monkeypatch.setattr(atustc.split, "write_split", half_written)
    with pytest.raises(RuntimeError):
        main(["split", "demo.parquet", "-o", "s", "--strategy", "resplit", "--seed", "3", "--overwrite"])
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir() if p.is_file()} == before
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    main(["split", "demo.parquet", "-o", "s", "--strategy", "resplit", "--seed", "3", "--overwrite"])
    assert json.loads((tmp_path / "s" / "split.json").read_text())["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.parquet", "s"]  # no temporary folder left
    (tmp_path / "empty").mkdir()
    main(["split", "demo.parquet", "-o", "empty"])  # an empty folder is not refused
    assert (tmp_path / "empty" / "split.json").is_file()
