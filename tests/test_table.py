"""The annotation-table contract: validation, parquet round-trip, hashing, manifest lookup."""

import json
from pathlib import Path

import pandas as pd
import pytest

from atustc.errors import AtustcError
from atustc.table import (
    COLUMNS,
    dataset_root,
    empty_table,
    image_root,
    load_table,
    manifest_path,
    save_table,
    table_hash,
    validate_table,
)


def make_table(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dataset": ["atustc"] * n,
            "relpath": [f"p001-d01-c01/cam0{i + 1}-f0-{i:04d}.jpg" for i in range(n)],
            "pid": [1] * n,
            "clothes": [1] * n,
            "camera": [i + 1 for i in range(n)],
            "modality": ["rgb"] * n,
            "date": [1] * n,
            "frame": list(range(n)),
            "flag": [0] * n,
            "split": ["train"] * n,
        }
    )


def test_round_trip_keeps_values_and_dtypes(tmp_path):
    df = make_table()
    save_table(df, tmp_path / "t.parquet")
    back = load_table(tmp_path / "t.parquet")
    assert list(back.columns) == list(COLUMNS)
    assert back["pid"].dtype == "int64"
    assert back["relpath"].tolist() == df["relpath"].tolist()
    assert table_hash(back) == table_hash(validate_table(df))


def test_validate_reorders_and_coerces_integer_strings():
    df = make_table()[list(reversed(COLUMNS))]
    df["pid"] = df["pid"].astype(str)
    out = validate_table(df)
    assert list(out.columns) == list(COLUMNS)
    assert out["pid"].tolist() == [1, 1, 1, 1]


def test_empty_table_is_valid():
    assert len(validate_table(empty_table())) == 0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns=["camera"]), r"t: missing column\(s\) camera"),
        (lambda d: d.assign(extra=1), r"unknown column\(s\) extra"),
        (
            lambda d: d.assign(modality=["rgb", "uv", "rgb", "ir"]),
            r"row 1: column 'modality' must be one of rgb, ir, got 'uv'",
        ),
        (lambda d: d.assign(split=["train", "train", "bogus", "val"]), r"row 2: column 'split'"),
        (lambda d: d.assign(pid=[1, "x", 2, 3]), r"row 1: column 'pid' must be an integer, got 'x'"),
        (lambda d: d.assign(pid=[1, 2.5, 2, 3]), r"row 1: column 'pid' must be an integer"),
        (lambda d: d.assign(date=[1, None, 2, 3]), r"row 1: column 'date' is empty"),
        (lambda d: d.assign(relpath=["a", "b", "a", "c"]), r"row 2: duplicate relpath 'a'"),
    ],
)
def test_validate_rejects_bad_tables(mutate, message):
    with pytest.raises(AtustcError, match=message):
        validate_table(mutate(make_table()), "t")


def test_save_does_not_touch_existing_file_on_invalid_table(tmp_path):
    path = tmp_path / "t.parquet"
    save_table(make_table(), path)
    before = path.read_bytes()
    with pytest.raises(AtustcError):
        save_table(make_table().drop(columns=["pid"]), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(AtustcError, match=r"nope.parquet: table not found"):
        load_table(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(AtustcError, match=r"bad.parquet: not a readable parquet table"):
        load_table(bad)


def test_hash_changes_with_content():
    a, b = make_table(), make_table()
    b.loc[3, "camera"] = 9
    assert table_hash(a) != table_hash(b)
    assert len(table_hash(a)) == 16


def test_manifest_path_and_root(tmp_path):
    table = tmp_path / "demo.parquet"
    assert manifest_path(table) == tmp_path / "demo.manifest.json"
    with pytest.raises(AtustcError, match="no manifest demo.manifest.json"):
        dataset_root(table)
    manifest_path(table).write_text(json.dumps({"root": "/data/AT-USTC"}))
    assert str(dataset_root(table)) == "/data/AT-USTC"


def test_image_root_order(tmp_path):
    """--root, then the split's root (given, or split.json beside the table), then the manifest's, then the run's."""
    table = tmp_path / "demo.parquet"
    with pytest.raises(AtustcError, match=r"demo.parquet: no manifest demo.manifest.json .*pass --root"):
        image_root(None, table_path=table)
    assert image_root(None, table_path=table, run_root="/run") == Path("/run")
    manifest_path(table).write_text(json.dumps({"root": "/manifest"}))
    assert image_root(None, table_path=table, run_root="/run") == Path("/manifest")
    assert image_root(None, table_path=table, split_info={"root": None}) == Path("/manifest")
    assert image_root(None, table_path=table, split_info={"root": "/split"}) == Path("/split")
    (tmp_path / "split.json").write_text(json.dumps({"root": "/beside"}))
    assert image_root(None, table_path=table) == Path("/beside")
    assert image_root(None, table_path=table, split_info={"root": "/split"}) == Path("/split")
    assert image_root("/user", table_path=table, split_info={"root": "/split"}, run_root="/run") == Path("/user")
    with pytest.raises(AtustcError, match="no split or run records an image root; pass --root"):
        image_root()


def test_every_command_resolves_the_root_through_image_root():
    """One rule: no other module reads a manifest's or split's ``root`` to find images."""
    import re

    root = Path(__file__).resolve().parents[1] / "atustc"
    readers = {
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if re.search(r"""(info|read_json\(.*\))(\.get\(|\[)["']root["']""", p.read_text())
    }
    assert readers <= {"table.py", "runfolder.py"}, readers  # runfolder: the run's recorded root, an input
