"""The dataset registry, the published-count check, and a made-up dataset end to end (the guide's example)."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atustc.cli import main
from atustc.datasets import DatasetSpec, Scan, get_dataset, index_dataset, list_datasets, published_check
from atustc.datasets._registry import register_dataset, unregister_dataset
from atustc.errors import AtustcError
from atustc.features import Features, save_features
from atustc.split import load_split


def test_atustc_is_registered_through_the_api():
    spec = get_dataset("atustc")
    assert (spec.protocol, spec.scored, spec.validation, spec.resplit) == ("atustc", ("atustc-mixed",), "flags", True)
    assert spec.protocols == ("atustc", "atustc-mixed")
    assert spec.published["query+gallery+test"] == {"identities": 135, "images": 117_512}
    assert "atustc" in list_datasets()


def test_duplicate_and_bad_specs_raise():
    spec = get_dataset("atustc")
    with pytest.raises(AtustcError, match="dataset 'atustc' is already registered"):
        register_dataset(spec)
    with pytest.raises(AtustcError, match="validation must be 'flags', 'release' or 'fraction'"):
        DatasetSpec("x", "1", "", spec.scan, "atustc", "at", validation="both")  # type: ignore[arg-type]
    with pytest.raises(AtustcError, match=r"published\['train'\]: unknown count 'ids'"):
        DatasetSpec("x", "1", "", spec.scan, "atustc", "at", published={"train": {"ids": 3}})
    with pytest.raises(AtustcError, match="task must be one of tr, cc, vi, at, got 'ir'"):
        DatasetSpec("x", "1", "", spec.scan, "atustc", "ir")  # type: ignore[arg-type]
    with pytest.raises(AtustcError, match="unknown dataset format 'market'"):
        get_dataset("market")


def test_published_check_counts_splits_and_unions():
    t = pd.DataFrame({"pid": [1, 1, 2, 3, 3], "split": ["train", "val", "query", "gallery", "gallery"]})
    published = {
        "train+val": {"identities": 1, "images": 2},
        "query": {"images": 1},
        "query+gallery": {"identities": 3, "images": 3},
    }
    assert published_check(t, published) == [
        {"split": "query+gallery", "count": "identities", "published": 3, "indexed": 2, "difference": -1},
    ]
    assert published_check(t, {}) == []


# --- a made-up dataset end to end: an indexer, a protocol, one registration --------------------
# The guide (docs/adding-a-dataset.md) walks through this same dataset.

GUIDE = Path(__file__).parents[1] / "docs" / "adding-a-dataset.md"


def guide_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), flags=re.S)


def guide_indexer():
    """The indexer of the guide's worked example, run as written there."""
    namespace: dict = {}
    exec(compile(guide_blocks("python")[0], str(GUIDE), "exec"), namespace)  # noqa: S102 (our own docs)
    return namespace["scan"]


@pytest.fixture()
def toy(tmp_path):
    """Register the guide's toyreid (protocol: the guide's file, in tmp_path), write a toy tree; unregister afterwards."""
    proto = tmp_path / "toyreid.toml"
    proto.write_text(guide_blocks("toml")[0])
    register_dataset(
        DatasetSpec(
            name="toyreid",
            version="1",
            description="a made-up layout",
            scan=guide_indexer(),
            protocol=str(proto),
            task="tr",
            variants=("cross-camera",),
            published={"train": {"identities": 6, "images": 36}, "query": {"images": 9}},
        )
    )
    root = tmp_path / "toy"
    files = [f"train/{p}_c{c}_{n}.jpg" for p in range(1, 7) for c in (1, 2) for n in range(3)]
    files += [f"query/{p}_c{c}_0.jpg" for p in range(7, 11) for c in (1, 2)]
    files += [f"gallery/{p}_c{c}_{n}.jpg" for p in range(7, 11) for c in (1, 2) for n in range(1, 4)]
    for f in [*files, "gallery/README.txt"]:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_bytes(b"")
    yield root, proto
    unregister_dataset("toyreid")


def onehot_features(table: pd.DataFrame, swap: str) -> Features:
    """One-hot features of the pid (head 'global'); the query ``swap`` looks like pid 10."""
    pid = table["pid"].to_numpy().copy()
    pid[table["relpath"].to_numpy() == swap] = 10
    feat = np.eye(11, dtype=np.float32)[pid][:, None, :]
    return Features(table["relpath"].to_numpy().astype(str), ("global",), feat)


def test_made_up_dataset_index_split_eval_end_to_end(toy, tmp_path, monkeypatch, capsys):
    root, proto = toy
    monkeypatch.chdir(tmp_path)
    main(["index", str(root), "--format", "toyreid", "-o", "toy.parquet"])
    out = capsys.readouterr().out
    assert "differs from the published statistics: query images: indexed 8, published 9 (-1)" in out
    manifest = json.loads((tmp_path / "toy.manifest.json").read_text())
    assert manifest["counts"]["by_split"] == {"gallery": 24, "query": 8, "train": 36}
    assert manifest["rejected"][0]["path"] == "gallery/README.txt"
    assert [d["split"] for d in manifest["published_check"]] == ["query"]

    main(["split", "toy.parquet", "-o", "sp", "--seed", "3"])
    info = json.loads((tmp_path / "sp" / "split.json").read_text())
    assert info["dataset"] == "toyreid" and info["validation"] == "fraction"
    assert info["protocols"] == {"default": str(proto), "scored": [str(proto)], "validation": str(proto)}
    s = info["summary"]
    assert s["identities"] == {"train": 5, "val": 1, "test": 4}  # round(0.2 * 6) validation identity
    assert s["scenarios"]["toy"] == {"queries": 8, "valid": 8, "gallery": 24}
    assert s["val_scenarios"]["toy"] == {"queries": 2, "valid": 2, "gallery": 4}  # one query per camera
    capsys.readouterr()
    main(["split", "sp", "--describe"])
    audit = capsys.readouterr().out
    assert "disjoint-set" in audit and "query|gallery" in audit and "st_query" not in audit
    split = load_split(tmp_path / "sp")
    assert set(split.val_protocol["split"]) == {"query", "gallery"}
    assert (tmp_path / "sp" / "lists" / "query.txt").read_text().splitlines() == sorted(
        f"query/{p}_c{c}_0.jpg" for p in range(7, 11) for c in (1, 2)
    )

    table = split.table
    save_features(onehot_features(table, "query/7_c1_0.jpg"), tmp_path / "f.npz")
    for protocol, json_name in ((str(proto), "base.json"), (f"{proto}:cross-camera", "cc.json")):
        main(
            [
                "eval",
                "--table",
                "sp/table.parquet",
                "--features",
                "f.npz",
                "--protocol",
                protocol,
                "--json",
                json_name,
                "--no-progress",
            ]
        )
    base = json.loads((tmp_path / "base.json").read_text())
    cc = json.loads((tmp_path / "cc.json").read_text())
    assert base["protocol"] == "toyreid" and cc["protocol"] == "toyreid:cross-camera"
    # 8 queries; the swapped one ranks pid 10's 6 images first, then its own 3 other-camera images
    for res in (base, cc):
        assert res["scenarios"]["toy"]["R1"] == pytest.approx(7 / 8) and res["scenarios"]["toy"]["valid_queries"] == 8
    # base: gallery order is the table's (gallery/7_c1_*, 7_c2_*, 8_..., 10_...): pid 10 (6) and
    # then the 3 same-pid other-camera images at ranks 7-9 (ties keep table order; 7_c1_* are junk)
    got = base["scenarios"]["toy"]["mAP"] * 8 - 7  # the 7 other queries have AP 1
    # the swapped query's AP by hand: score 1 for pid 10, 0 for the rest, ties in table order
    gallery = table[table["split"] == "gallery"]
    keep = gallery[~((gallery["pid"] == 7) & (gallery["camera"] == 1))]
    order = sorted(range(len(keep)), key=lambda i: (int(keep["pid"].iloc[i] != 10), i))
    hits = [keep["pid"].iloc[i] == 7 for i in order]
    ranks = [r + 1 for r, h in enumerate(hits) if h]
    ap_swapped = sum((k + 1) / r for k, r in enumerate(ranks)) / len(ranks)
    assert got == pytest.approx(ap_swapped, abs=1e-12)


def test_made_up_dataset_bad_input(toy, tmp_path, monkeypatch, capsys):
    root, proto = toy
    monkeypatch.chdir(tmp_path)

    def fails(args, message):
        with pytest.raises(SystemExit) as exc:
            main(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1 and message in err[0], err

    fails(
        ["index", str(root), "--format", "toyreidd", "-o", "t.parquet"],
        "unknown dataset format 'toyreidd'; did you mean toyreid",
    )
    assert not (tmp_path / "t.parquet").exists()
    main(["index", str(root), "--format", "toyreid", "-o", "toy.parquet", "-q"])
    fails(
        ["split", "toy.parquet", "-o", "re", "--strategy", "resplit"], "dataset toyreid keeps its official split only"
    )
    fails(
        ["eval", "--table", "toy.parquet", "--features", "f.npz", "--protocol", f"{proto}:nope"],
        "toyreid.toml: unknown variant 'nope' (variants: cross-camera)",
    )
    # every query identity seen by one camera only: the protocol's only scenario has no valid query
    for f in (root / "gallery").glob("*_c2_*.jpg"):
        f.unlink()
    for f in (root / "query").glob("*_c2_*.jpg"):
        f.unlink()
    main(["index", str(root), "--format", "toyreid", "-o", "one.parquet", "-q"])
    fails(
        ["split", "one.parquet", "-o", "sp"],
        "scenario toy has no query with a valid positive (4 queries, 12 gallery images)",
    )
    assert not (tmp_path / "sp").exists()


def test_stats_of_a_made_up_dataset_use_its_default_protocol(toy):
    from atustc.stats import table_stats

    root, _ = toy
    cov = table_stats(index_dataset(root, "toyreid").table).coverage
    own = cov[cov["protocol"] == "toyreid"]
    assert own[["group", "scenario", "valid_queries", "queries"]].values.tolist() == [["test", "toy", 8, 8]]
    six = cov[(cov["protocol"] == "atustc") & (cov["group"] == "test")].set_index("scenario")
    assert six["valid_queries"].tolist() == [8, 0, 0, 0, 0, 0]  # RGB only, one outfit: DT-ST alone


def test_an_indexer_must_give_the_split_column(tmp_path):
    def scan(root):
        cols = {
            "dataset": "nosplit",
            "relpath": np.array(["a.jpg"], dtype=object),
            "pid": np.array([1]),
            "clothes": -1,
            "camera": np.array([1]),
            "modality": "rgb",
            "date": -1,
            "frame": -1,
            "flag": -1,
        }
        return Scan(columns=cols, rejected=[], files_seen=1)

    register_dataset(DatasetSpec("nosplit", "1", "", scan, "atustc", "at"))
    try:
        (tmp_path / "a.jpg").write_bytes(b"")
        with pytest.raises(AtustcError, match="dataset 'nosplit': its indexer gave no 'split' column"):
            index_dataset(tmp_path, "nosplit")
    finally:
        unregister_dataset("nosplit")


def test_release_validation_keeps_the_release_val_identities_only():
    from atustc.split import make_split

    spec = get_dataset("msmt17")
    assert spec.validation == "release"
    rows = []
    for pid, split in (
        (1, "train"),
        (2, "train"),
        (3, "train"),
        (4, "val"),
        (5, "query"),
        (5, "gallery"),
        (6, "query"),
        (6, "gallery"),
    ):
        for cam, frame in ((1, 0), (1, 1), (2, 0), (2, 1)):
            rows.append(
                {
                    "dataset": "msmt17",
                    "relpath": f"{split}/{pid}_{cam}_{frame}.jpg",
                    "pid": pid,
                    "clothes": -1,
                    "camera": cam,
                    "modality": "rgb",
                    "date": -1,
                    "frame": frame,
                    "flag": -1,
                    "split": split,
                }
            )
    table = pd.DataFrame(rows)
    split = make_split(table)
    assert sorted(split.train["pid"].unique()) == [1, 2, 3]  # no train identity drawn as validation
    assert sorted(split.val["pid"].unique()) == [4]
    # one query per (pid, camera, clothes) clip, the rest gallery
    assert sorted(split.val_protocol["split"]) == ["gallery", "gallery", "query", "query"]
    with pytest.raises(AtustcError, match="dataset msmt17 takes its validation identities from the release's val"):
        make_split(table[table["split"] != "val"])


def test_a_variant_has_its_own_protocol_hash():
    from atustc.protocol import load_protocol
    from atustc.provenance import protocol_hash

    assert protocol_hash(load_protocol("ltcc")) != protocol_hash(load_protocol("ltcc:atreid"))
    assert protocol_hash(load_protocol("ltcc:atreid")) == protocol_hash(load_protocol("ltcc:atreid"))
