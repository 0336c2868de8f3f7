"""The six ReID indexers (Market-1501, CUHK03-NP, MSMT17, PRCC, LTCC, DeepChange) and their miniatures.

`atustc synth --layout NAME` -> the indexer's scan -> a validated table; exact rows of
hand-made trees; rejected names with reasons; bad roots, missing list files and missing
listed images end in one line naming the file (exit 2 from the CLI, nothing written).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from atustc.cli import main
from atustc.datasets import msmt17
from atustc.errors import AtustcError
from atustc.synth.layouts import write_layout
from tests.reid_standin import MODULES, index_root, miniature_root, tree_bytes

#: (train, val, query, gallery) rows of each miniature at seed 0
COUNTS = {
    "market1501": (48, 0, 18, 39),
    "cuhk03": (48, 0, 12, 24),
    "msmt17": (46, 2, 12, 24),
    "prcc": (42, 21, 20, 15),
    "ltcc": (36, 0, 9, 27),
    "deepchange": (48, 24, 10, 30),
}


@pytest.fixture(scope="module")
def minis(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("minis")
    for name in COUNTS:
        write_layout(base / name, name, seed=0)
    return {name: base / name for name in COUNTS}


def touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def codes(root: Path, name: str) -> dict[str, str]:
    return {r["path"]: r["code"] for r in MODULES[name].scan(root).rejected}


@pytest.mark.parametrize("name", list(COUNTS))
def test_miniature_indexes_in_its_release_layout(minis, name):
    root = miniature_root(minis[name], name)
    scan = MODULES[name].scan(root)
    table = index_root(name, root)
    by_split = table["split"].value_counts()
    assert tuple(int(by_split.get(s, 0)) for s in ("train", "val", "query", "gallery")) == COUNTS[name]
    assert [r["code"] for r in scan.rejected] == (["junk"] * 3 if name == "market1501" else [])
    assert (table["dataset"] == name).all() and (table["modality"] == "rgb").all() and (table["flag"] == -1).all()
    assert table["camera"].between(1, 8).all()
    assert all((root / r).is_file() for r in table["relpath"])
    train_ids = set(table.loc[table["split"].isin(["train"]), "pid"])
    query_ids, gallery_ids = (set(table.loc[table["split"] == s, "pid"]) for s in ("query", "gallery"))
    assert query_ids <= gallery_ids and not train_ids & (query_ids | gallery_ids)


def test_market_junk_dropped_with_reason_and_distractors_kept(minis):
    scan = MODULES["market1501"].scan(minis["market1501"])
    assert [r["code"] for r in scan.rejected] == ["junk"] * 3
    assert all(r["path"].startswith("bounding_box_test/-1_c") for r in scan.rejected)
    assert "pid -1" in scan.rejected[0]["reason"]
    table = index_root("market1501", minis["market1501"])
    assert set(table.loc[table["pid"] == 0, "split"]) == {"gallery"} and (table["pid"] == 0).sum() == 3


def test_miniatures_are_deterministic_per_seed(tmp_path):
    write_layout(tmp_path / "a", "ltcc", seed=3)
    write_layout(tmp_path / "b", "ltcc", seed=3)
    write_layout(tmp_path / "c", "ltcc", seed=4)
    a, b, c = (tree_bytes(tmp_path / x) for x in "abc")
    assert a == b and a != c
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_synth_layout_refuses_a_non_empty_folder_and_leaves_it(tmp_path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["synth", str(out), "--layout", "prcc"])
    assert exc.value.code == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(SystemExit):
        main(["synth", str(tmp_path / "z"), "--layout", "prc"])
    assert "did you mean prcc" in capsys.readouterr().err and not (tmp_path / "z").exists()


def test_synth_cli_prints_the_next_command(tmp_path, capsys):
    main(["synth", str(tmp_path / "c3"), "--layout", "cuhk03", "--seed", "2"])
    out = capsys.readouterr().out
    assert f"atustc index {tmp_path / 'c3' / 'detected'} --format cuhk03" in out
    assert (tmp_path / "c3" / "labeled" / "bounding_box_train").is_dir()


# ---- exact rows of hand-made trees ---------------------------------------------------------

ROW = ("pid", "clothes", "camera", "date", "frame", "split")


def rows(root: Path, name: str) -> dict[str, tuple]:
    t = index_root(name, root).set_index("relpath")
    return {r: tuple(int(t.loc[r, c]) if c != "split" else t.loc[r, c] for c in ROW) for r in t.index}


def test_market1501_rows_and_rejections(tmp_path):
    touch(
        tmp_path,
        "bounding_box_train/0002_c1s1_000451_03.jpg",
        "query/0001_c6s2_001051_00.jpg",
        "bounding_box_test/0000_c3s1_000151_01.jpg",
        "bounding_box_test/-1_c1s1_000401_03.jpg",
        "bounding_box_test/Thumbs.db",
        "bounding_box_test/0001_c7s1_000151_01.jpg",
        "bounding_box_train/0002_c1s1_000451.jpg",
        "query/sub/0001_c1s1_000001_00.jpg",
    )
    assert rows(tmp_path, "market1501") == {
        "bounding_box_train/0002_c1s1_000451_03.jpg": (2, -1, 1, -1, 451, "train"),
        "query/0001_c6s2_001051_00.jpg": (1, -1, 6, -1, 1051, "query"),
        "bounding_box_test/0000_c3s1_000151_01.jpg": (0, -1, 3, -1, 151, "gallery"),
    }
    assert codes(tmp_path, "market1501") == {
        "bounding_box_test/-1_c1s1_000401_03.jpg": "junk",
        "bounding_box_test/Thumbs.db": "not_image",
        "bounding_box_test/0001_c7s1_000151_01.jpg": "bad_camera",
        "bounding_box_train/0002_c1s1_000451.jpg": "unparseable",
        "query/sub/": "unparseable",
    }


def test_cuhk03_rows_root_must_be_a_layout(tmp_path):
    touch(
        tmp_path,
        "detected/bounding_box_train/0465_c1_4527.png",
        "detected/query/0003_c2_31.png",
        "detected/bounding_box_test/0003_c1_25.png",
        "detected/bounding_box_test/0003_c3_26.png",
    )
    assert rows(tmp_path / "detected", "cuhk03") == {
        "bounding_box_train/0465_c1_4527.png": (465, -1, 1, -1, 4527, "train"),
        "query/0003_c2_31.png": (3, -1, 2, -1, 31, "query"),
        "bounding_box_test/0003_c1_25.png": (3, -1, 1, -1, 25, "gallery"),
    }
    assert codes(tmp_path / "detected", "cuhk03") == {"bounding_box_test/0003_c3_26.png": "bad_camera"}
    with pytest.raises(AtustcError, match=r"holds the CUHK03-NP layouts detected; point ROOT at .*detected$"):
        MODULES["cuhk03"].scan(tmp_path)


def test_msmt17_rows_from_the_lists_v1_and_v2(tmp_path):
    names = {
        "train": ["0000/0000_000_01_0303morning_0015_0.jpg", "0001/0001_004_14_0113noon_0872_2.jpg"],
        "test": ["0000/0000_001_03_0302afternoon_0001_1.jpg", "0000/0000_002_05_0302noon_0002_0.jpg"],
    }
    for folder, rels in names.items():
        touch(tmp_path, *(f"{folder}/{r}" for r in rels))
    touch(tmp_path, "train/0001/stray.jpg")
    (tmp_path / "list_train.txt").write_text(f"{names['train'][0]} 0\n")
    (tmp_path / "list_val.txt").write_text(f"{names['train'][1]} 1\n")
    (tmp_path / "list_query.txt").write_text(f"{names['test'][0]} 0\n")
    (tmp_path / "list_gallery.txt").write_text(f"{names['test'][1]} 0\n\n")
    expected = {
        "train/0000/0000_000_01_0303morning_0015_0.jpg": (0, -1, 1, 303, 15, "train"),
        "train/0001/0001_004_14_0113noon_0872_2.jpg": (1, -1, 14, 113, 872, "val"),
        "test/0000/0000_001_03_0302afternoon_0001_1.jpg": (2, -1, 3, 302, 1, "query"),  # test pid 0 + 2 train pids
        "test/0000/0000_002_05_0302noon_0002_0.jpg": (2, -1, 5, 302, 2, "gallery"),
    }
    assert rows(tmp_path, "msmt17") == expected
    assert codes(tmp_path, "msmt17") == {"train/0001/stray.jpg": "not_listed"}
    (tmp_path / "train").rename(tmp_path / "mask_train_v2")
    (tmp_path / "test").rename(tmp_path / "mask_test_v2")
    v2 = {k.replace("train/", "mask_train_v2/", 1).replace("test/", "mask_test_v2/", 1): v for k, v in expected.items()}
    assert rows(tmp_path, "msmt17") == v2
    assert msmt17.version_of(tmp_path) == "v2"


def test_prcc_rows_cameras_and_clothes(tmp_path):
    touch(
        tmp_path,
        "rgb/train/001/A_cropped_rgb001.jpg",
        "rgb/train/001/C_cropped_rgb010.jpg",
        "rgb/val/002/B_cropped_rgb003.jpg",
        "rgb/test/A/005/cropped_rgb001.jpg",
        "rgb/test/B/005/cropped_rgb002.jpg",
        "rgb/test/C/005/cropped_rgb003.jpg",
        "rgb/train/001/D_cropped_rgb004.jpg",
        "rgb/train/notes/x.jpg",
    )
    assert rows(tmp_path, "prcc") == {
        "rgb/train/001/A_cropped_rgb001.jpg": (1, 1, 1, -1, 1, "train"),
        "rgb/train/001/C_cropped_rgb010.jpg": (1, 2, 3, -1, 10, "train"),
        "rgb/val/002/B_cropped_rgb003.jpg": (2, 1, 2, -1, 3, "val"),
        "rgb/test/A/005/cropped_rgb001.jpg": (5, 1, 1, -1, 1, "gallery"),
        "rgb/test/B/005/cropped_rgb002.jpg": (5, 1, 2, -1, 2, "query"),
        "rgb/test/C/005/cropped_rgb003.jpg": (5, 2, 3, -1, 3, "query"),
    }
    assert codes(tmp_path, "prcc") == {
        "rgb/train/001/D_cropped_rgb004.jpg": "unparseable",
        "rgb/train/notes": "unparseable",
    }


def test_ltcc_clothes_key_from_the_file_name_only(tmp_path):
    root = tmp_path / "ltcc_7_c3_cache" / "LTCC_ReID"  # a parent folder that a full-path regex would misread
    touch(
        root,
        "train/144_1_c11_011239.png",
        "query/001_2_c3_000017.png",
        "test/001_1_c12_000018.png",
        "test/001_1_c13_000019.png",
        "test/1_c3_000020.png",
    )
    assert rows(root, "ltcc") == {
        "train/144_1_c11_011239.png": (144, 1, 11, -1, 11239, "train"),
        "query/001_2_c3_000017.png": (1, 2, 3, -1, 17, "query"),
        "test/001_1_c12_000018.png": (1, 1, 12, -1, 18, "gallery"),
    }
    assert codes(root, "ltcc") == {"test/001_1_c13_000019.png": "bad_camera", "test/1_c3_000020.png": "unparseable"}


def test_deepchange_rows_tracklet_key(tmp_path):
    for d in ("val-set-query", "val-set-gallery"):
        (tmp_path / d).mkdir()
    touch(
        tmp_path,
        "train-set/P0702_C13_20200813_154757_000038_bbox.jpg",
        "test-set-query/p0010_c02_20190325_081327_000001_bbox.jpg",
        "test-set-gallery/P0010_C02_20190325_090000_000002_bbox.jpg",
        "test-set-gallery/P0010_C02_2019032_090000_000002_bbox.jpg",
    )
    assert rows(tmp_path, "deepchange") == {
        "train-set/P0702_C13_20200813_154757_000038_bbox.jpg": (702, 20200813, 13, 20200813, 38, "train"),
        "test-set-query/p0010_c02_20190325_081327_000001_bbox.jpg": (10, 20190325081327, 2, 20190325, 1, "query"),
        "test-set-gallery/P0010_C02_20190325_090000_000002_bbox.jpg": (10, 20190325090000, 2, 20190325, 2, "gallery"),
    }
    assert codes(tmp_path, "deepchange") == {"test-set-gallery/P0010_C02_2019032_090000_000002_bbox.jpg": "unparseable"}


def test_badly_named_files_in_a_miniature_are_rejected_with_reasons(minis, tmp_path):
    root = tmp_path / "ltcc"
    shutil.copytree(minis["ltcc"], root)
    touch(root, "train/README.txt", "query/007_1_c3.png", "test/abc_1_c2_000001.png", "test/007_1_c99_000001.png")
    (root / "test" / "extra").mkdir()
    scan = MODULES["ltcc"].scan(root)
    got = {r["path"]: (r["code"], r["reason"]) for r in scan.rejected}
    assert got == {
        "train/README.txt": ("not_image", "not an image file (extension '.txt')"),
        "query/007_1_c3.png": ("unparseable", f"file name does not parse; expected {MODULES['ltcc'].NAME_HELP}"),
        "test/abc_1_c2_000001.png": ("unparseable", f"file name does not parse; expected {MODULES['ltcc'].NAME_HELP}"),
        "test/007_1_c99_000001.png": ("bad_camera", "camera 99 out of range 1-12"),
        "test/extra/": ("unparseable", "unexpected folder"),
    }
    assert len(scan.columns["relpath"]) == sum(COUNTS["ltcc"]) and scan.files_seen == sum(COUNTS["ltcc"]) + 5


# ---- bad input: one line naming the file, exit 2, nothing written ---------------------------


@pytest.mark.parametrize(
    ("fmt", "root_of", "message"),
    [
        (
            "ltcc",
            "market1501",
            r"not a LTCC root \(missing train\); it looks like a market1501 root: use --format market1501",
        ),
        ("prcc", "deepchange", r"not a PRCC root \(missing rgb/train\); it looks like a deepchange root"),
        ("market1501", "ltcc", r"not a Market-1501 root \(missing bounding_box_train\); it looks like a ltcc root"),
        ("deepchange", "msmt17", r"not a DeepChange root \(missing train-set\); it looks like a msmt17 root"),
        ("msmt17", "prcc", r"not a MSMT17 .* root \(missing list_train.txt\); it looks like a prcc root"),
        ("cuhk03", "market1501", r"file names are Market-1501's .*use --format market1501"),
    ],
)
def test_a_root_laid_out_as_another_dataset(minis, fmt, root_of, message):
    with pytest.raises(AtustcError, match=message):
        MODULES[fmt].scan(minis[root_of])


def test_missing_list_file_and_missing_listed_image(minis, tmp_path):
    root = tmp_path / "msmt"
    shutil.copytree(minis["msmt17"], root)
    first = (root / "list_gallery.txt").read_text().splitlines()[2].split()[0]
    (root / "test" / first).unlink()
    with pytest.raises(AtustcError, match=rf"list_gallery.txt: line 3: image test/{first} not found \(1 listed image"):
        MODULES["msmt17"].scan(root)
    (root / "list_val.txt").unlink()
    with pytest.raises(AtustcError, match=r"list_val.txt: list file not found"):
        MODULES["msmt17"].scan(root)
    (root / "list_val.txt").write_text("0000/x.jpg\n")
    with pytest.raises(AtustcError, match=r"list_val.txt: line 1: expected '<relpath> <pid>', got '0000/x.jpg'"):
        MODULES["msmt17"].scan(root)


@pytest.mark.parametrize("case", ["other-layout", "missing-list", "missing-image"])
def test_bad_input_from_the_cli_exits_2_and_writes_nothing(minis, tmp_path, capsys, case):
    root = tmp_path / "msmt"
    shutil.copytree(minis["msmt17"], root)
    fmt = "msmt17"
    if case == "other-layout":
        root, fmt = minis["prcc"], "ltcc"
    elif case == "missing-list":
        (root / "list_query.txt").unlink()
    else:
        (root / "train" / (root / "list_train.txt").read_text().split()[0]).unlink()
    out = tmp_path / "out" / "t.parquet"
    with pytest.raises(SystemExit) as exc:
        main(["index", str(root), "--format", fmt, "-o", str(out), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert {
        "other-layout": "not a LTCC root",
        "missing-list": "list_query.txt: list file not found",
        "missing-image": "list_train.txt: line 1: image train/",
    }[case] in err[0]
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_parse_names_vectorised_matches_per_name():
    from atustc.datasets._reid_layout import parse_names

    names = ["0002_c1s1_000451_03.jpg", "bad", "-1_c2s1_000001_00.jpg", "0003_c1s1_1_1.jpg\n"]
    ok, groups = parse_names(names, MODULES["market1501"].PATTERN)
    assert ok.tolist() == [True, False, True, False]
    assert groups[0].tolist() == ["0002", "1", "1", "000451", "03"] and groups[2, 0] == "-1"
    ok, groups = parse_names(names[:1] * 3, MODULES["market1501"].PATTERN)
    assert ok.all() and np.array_equal(groups[1], groups[2])
