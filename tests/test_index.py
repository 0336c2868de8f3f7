"""`atustc index`: parsing, every bad-input case, --strict, --verify-images, manifest, start-up imports."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from atustc.cli import main
from atustc.datasets import get_dataset, index_dataset, list_datasets, write_index
from atustc.datasets.atustc_format import parse_names
from atustc.errors import AtustcError
from atustc.table import load_table, manifest_path, table_hash


def touch(root: Path, *relpaths: str, data: bytes = b"") -> None:
    for rel in relpaths:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def jpeg_bytes(value: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 8, 3), value, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


GOOD = [
    "p001-d01-c01/cam01-f0-0050.jpg",
    "p001-d01-c01/cam09-f1-0051.jpg",
    "p002-d03-c02/cam16-f10-1234.png",
    "p002-d03-c02/cam08-f7-0002.JPG",
]
BAD = {
    "p001-d01-c01/notes.txt": ("not_image", "not an image file (extension '.txt')"),
    "p001-d01-c01/camXX-f0-0001.jpg": ("unparseable", "file name does not parse"),
    "p001-d01-c01/cam02-f11-0001.jpg": ("unknown_flag", "unknown flag f11 (AT-USTC flags are 0-10)"),
    "p001-d01-c01/cam17-f0-0001.jpg": ("bad_camera", "camera 17 out of range 1-16"),
    "p001-d01-c01/cam00-f0-0002.jpg": ("bad_camera", "camera 0 out of range 1-16"),
    "p001-d01-c01/cam01-f0-0050.png": ("duplicate", "duplicate of p001-d01-c01/cam01-f0-0050.jpg"),
    "p001-d01-c01/cam3-f0-12.jpg": (
        "noncanonical",
        "non-canonical file name (the release would spell it cam03-f0-0012.jpg)",
    ),
    "p001-d01-c01/cam04-f00-0012.png": (
        "noncanonical",
        "non-canonical file name (the release would spell it cam04-f0-0012.png)",
    ),
    "p001-d01-c01/cam04-f0-012.jpg": ("noncanonical", "non-canonical file name"),
    "p001-d01-c01/cam004-f0-0012.jpg": ("noncanonical", "non-canonical file name"),
    "p001-d01-c01/xcam04-f0-0012.jpg": ("unparseable", "file name does not parse"),
    "loose.jpg": ("unparseable", "not inside a pXXX-dYY-cZZ capture folder"),
    "extra/README": ("not_image", "not an image file (extension 'none')"),
}


def test_parse_exact_rows(tmp_path):
    touch(tmp_path, *GOOD)
    res = index_dataset(tmp_path)
    t = res.table
    assert t["relpath"].tolist() == sorted(GOOD)
    row = t.set_index("relpath").loc["p002-d03-c02/cam16-f10-1234.png"]
    got = tuple(row[c] for c in ("pid", "date", "clothes", "camera", "flag", "frame"))
    assert got == (2, 3, 2, 16, 10, 1234)
    assert (row["modality"], row["split"], row["dataset"]) == ("ir", "test", "atustc")
    assert t.set_index("relpath").loc["p002-d03-c02/cam08-f7-0002.JPG", "split"] == "gallery"
    assert t.set_index("relpath").loc["p001-d01-c01/cam09-f1-0051.jpg", "split"] == "val"
    assert res.manifest["root"] == str(tmp_path.resolve())
    assert res.manifest["counts"]["images"] == 4 and res.manifest["rejected"] == []


def test_nested_root_and_fast_slow_parse_agree(tmp_path):
    touch(tmp_path, *(f"AT-USTC/{g}" for g in GOOD))
    assert index_dataset(tmp_path).table["relpath"].str.startswith("AT-USTC/").all()
    names = ["cam01-f0-0050.jpg", "cam16-f10-1234.png", "cam03-f2-12345.jpeg"]
    ok, ints = parse_names(names)
    ok2, ints2 = parse_names(names + ["bad.jpg", "cam3-f2-7.jpg"])
    assert ok.all() and not ok2[-2:].any() and (ints2[:3] == ints).all()
    assert ints.tolist() == [[1, 0, 50], [16, 10, 1234], [3, 2, 12345]] and ints2[-1].tolist() == [-1, -1, -1]


def test_every_bad_input_is_listed_with_its_reason(tmp_path):
    touch(tmp_path, *GOOD, *BAD)
    (tmp_path / "p001-d01-c01" / "subdir").mkdir()
    res = index_dataset(tmp_path)
    got = {r["path"]: (r["code"], r["reason"]) for r in res.manifest["rejected"]}
    for path, (code, reason) in BAD.items():
        assert got[path][0] == code and got[path][1].startswith(reason), (path, got[path])
    assert got["p001-d01-c01/subdir/"][0] == "unparseable"
    assert len(res.table) == len(GOOD)
    assert res.manifest["counts"]["rejected_by_reason"] == {
        "bad_camera": 2,
        "duplicate": 1,
        "noncanonical": 4,
        "not_image": 2,
        "unknown_flag": 1,
        "unparseable": 4,
    }


@pytest.mark.parametrize("bad", sorted(BAD))
def test_strict_turns_each_reject_into_exit_2(tmp_path, capsys, bad):
    touch(tmp_path, *GOOD, bad)
    out = tmp_path / "t.parquet"
    with pytest.raises(SystemExit) as exc:
        main(["index", str(tmp_path), "-o", str(out), "--strict"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "1 file(s) rejected under --strict" in err[0]
    assert bad in err[0] and BAD[bad][1] in err[0]
    assert not out.exists() and not manifest_path(out).exists()


def test_without_strict_the_cli_writes_table_and_manifest(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    root = tmp_path / "ds"
    touch(root, *GOOD, *BAD)
    out = tmp_path / "ds.parquet"
    main(["index", str(root), "-o", str(out)])
    text = capsys.readouterr().out
    assert "4 images" in text and f"{len(BAD)} rejected" in text and "duplicate" in text and "noncanonical" in text
    manifest = json.loads(manifest_path(out).read_text())
    table = load_table(out)
    assert manifest["table_hash"] == table_hash(table)
    assert manifest["root"] == str(root.resolve()) and len(manifest["rejected"]) == len(BAD)
    assert manifest["format"] == "atustc" and manifest["indexer"]["name"] == "atustc"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "dataset root not found"),
        (lambda p: p.mkdir(), "dataset root is empty"),
        (lambda p: p.write_text("x"), "dataset root is not a folder"),
        (
            lambda p: touch(p, "p001-d01-c01/notes.txt"),
            "no valid atustc images found \\(1 files rejected; first rejected",
        ),
    ],
)
def test_root_errors_always_exit_2(tmp_path, capsys, make, message):
    root = tmp_path / "root"
    make(root)
    with pytest.raises(AtustcError, match=message):
        index_dataset(root)
    with pytest.raises(SystemExit) as exc:
        main(["index", str(root), "-o", str(tmp_path / "t.parquet")])
    assert exc.value.code == 2 and "error: " in capsys.readouterr().err


def test_verify_images_rejects_corrupt_and_truncated(tmp_path, capsys):
    good = jpeg_bytes()
    touch(tmp_path, "p001-d01-c01/cam01-f0-0001.jpg", "p001-d01-c01/cam02-f0-0002.jpg", data=good)
    touch(tmp_path, "p001-d01-c01/cam03-f0-0003.jpg", data=good[: len(good) // 2])  # truncated
    touch(tmp_path, "p001-d01-c01/cam04-f0-0004.jpg")  # zero bytes
    assert len(index_dataset(tmp_path).table) == 4
    res = index_dataset(tmp_path, verify_images=True, workers=2)
    assert res.table["relpath"].tolist() == ["p001-d01-c01/cam01-f0-0001.jpg", "p001-d01-c01/cam02-f0-0002.jpg"]
    reasons = {r["path"]: r for r in res.manifest["rejected"]}
    assert reasons["p001-d01-c01/cam03-f0-0003.jpg"]["code"] == "corrupt"
    assert "truncated" in reasons["p001-d01-c01/cam03-f0-0003.jpg"]["reason"]
    assert reasons["p001-d01-c01/cam04-f0-0004.jpg"]["reason"] == "corrupt image: not a decodable image"
    with pytest.raises(SystemExit):
        main(["index", str(tmp_path), "-o", str(tmp_path / "t.parquet"), "--verify-images", "--strict", "-q"])
    assert "2 file(s) rejected under --strict; first: p001-d01-c01/cam03-f0-0003.jpg" in capsys.readouterr().err


def test_registry_and_output_name(tmp_path):
    assert "atustc" in list_datasets() and get_dataset("atustc").version == "1"
    with pytest.raises(AtustcError, match="unknown dataset format 'atustcc'; did you mean atustc"):
        get_dataset("atustcc")
    touch(tmp_path, *GOOD)
    with pytest.raises(AtustcError, match="must end in .parquet"):
        write_index(index_dataset(tmp_path), tmp_path / "t.csv")


def test_index_command_imports_no_model_libraries(tmp_path):
    touch(tmp_path / "ds", *GOOD)
    code = (
        "import sys\nfrom atustc.cli import main\n"
        f"main(['index', {str(tmp_path / 'ds')!r}, '-o', {str(tmp_path / 't.parquet')!r}, '-q'])\n"
        "print(sorted(m for m in ('torch', 'timm', 'matplotlib', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_counts_differing_from_the_published_ones_are_recorded_printed_and_strict(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    touch(tmp_path / "ds", *GOOD)
    checks = index_dataset(tmp_path / "ds").manifest["published_check"]
    assert checks[0] == {
        "split": "train+val",
        "count": "identities",
        "published": 135,
        "indexed": 1,
        "difference": -134,
    }
    assert [(c["split"], c["count"]) for c in checks] == [
        ("train+val", "identities"),
        ("train+val", "images"),
        ("val", "images"),
        ("query+gallery+test", "identities"),
        ("query+gallery+test", "images"),
    ]
    out = tmp_path / "t.parquet"
    main(["index", str(tmp_path / "ds"), "-o", str(out)])
    assert (
        "differs from the published statistics: val images: indexed 1, published 55,060 (-55,059)"
        in capsys.readouterr().out
    )
    assert json.loads(manifest_path(out).read_text())["published_check"] == checks
    with pytest.raises(SystemExit) as exc:
        main(["index", str(tmp_path / "ds"), "-o", str(tmp_path / "s.parquet"), "--strict"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "5 count(s) differ from the published atustc statistics under --strict" in err
    assert not (tmp_path / "s.parquet").exists()
