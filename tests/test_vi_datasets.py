"""The visible-infrared indexers (SYSU-MM01, RegDB, LLCM) and their miniatures.

`atustc synth --layout NAME` -> index -> split -> eval from the CLI; exact rows of hand-made
trees; bad input (a root of another dataset, a missing list file, a list entry without its
image, an unknown variant) ends in one line naming the file or option, exit 2, nothing written.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from atustc.cli import main
from atustc.datasets import index_dataset, llcm, regdb, sysu_mm01
from atustc.errors import AtustcError
from atustc.features import Features, save_features
from atustc.synth.layouts import write_layout
from tests.reid_standin import index_root

VI = ("sysu-mm01", "regdb", "llcm")
MODULES = {"sysu-mm01": sysu_mm01, "regdb": regdb, "llcm": llcm}
#: rows per (split, modality) of each miniature at seed 0
COUNTS = {
    "sysu-mm01": {("gallery", "rgb"): 86, ("query", "ir"): 27, ("train", "ir"): 20, ("train", "rgb"): 40,
                  ("val", "ir"): 11, ("val", "rgb"): 18},
    "regdb": {("test", "ir"): 16, ("test", "rgb"): 16, ("train", "ir"): 16, ("train", "rgb"): 16},
    "llcm": {("test", "ir"): 40, ("test", "rgb"): 38, ("train", "ir"): 29, ("train", "rgb"): 34},
}  # fmt: skip


@pytest.fixture(scope="module")
def minis(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("vi-minis")
    for name in VI:
        write_layout(base / name, name, seed=0)
    return {name: base / name for name in VI}


def touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


@pytest.mark.parametrize("name", VI)
def test_miniature_indexes_in_its_release_layout(minis, name):
    table = index_root(name, minis[name])
    assert table.groupby(["split", "modality"]).size().to_dict() == COUNTS[name]
    assert MODULES[name].scan(minis[name]).rejected == []
    assert (table["dataset"] == name).all() and (table["flag"] == -1).all()
    assert all((minis[name] / r).is_file() for r in table["relpath"])
    train = set(table.loc[table["split"].isin(["train", "val"]), "pid"])
    test = set(table.loc[~table["split"].isin(["train", "val"]), "pid"])
    assert train and test and not train & test
    for modality, group in table.groupby("modality"):  # both modalities for every test identity
        assert set(group.loc[~group["split"].isin(["train", "val"]), "pid"]) == test, modality


def test_miniature_images_differ_by_modality(minis):
    from PIL import Image

    ir = np.asarray(Image.open(minis["sysu-mm01"] / "cam3/0007/0001.jpg")).astype(int)
    rgb = np.asarray(Image.open(minis["sysu-mm01"] / "cam1/0007/0001.jpg")).astype(int)
    assert np.abs(ir[..., 0] - ir[..., 1]).max() <= 12  # grey (JPEG noise only)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).max() > 30


# ---- exact rows of hand-made trees ---------------------------------------------------------

ROW = ("pid", "camera", "modality", "frame", "split")


def rows(root: Path, name: str, **kw) -> dict[str, tuple]:
    scan = MODULES[name].scan(root, **kw)
    t = index_root(name, root) if not kw else None
    if t is None:
        import pandas as pd

        from atustc.table import validate_table

        t = validate_table(pd.DataFrame(scan.columns), root)
    t = t.set_index("relpath")
    return {
        r: tuple(t.loc[r, c].item() if c not in ("modality", "split") else t.loc[r, c] for c in ROW) for r in t.index
    }


def codes(root: Path, name: str, **kw) -> dict[str, str]:
    return {r["path"]: r["code"] for r in MODULES[name].scan(root, **kw).rejected}


def sysu_tree(root: Path) -> None:
    touch(
        root,
        "cam1/0001/0001.jpg",
        "cam3/0001/0002.jpg",
        "cam2/0002/0007.jpg",
        "cam6/0003/0010.jpg",
        "cam4/0003/0004.jpg",
        "cam5/0009/0001.jpg",  # identity in no list
        "cam5/notes.txt",
        "cam4/0003/Thumbs.db",
    )
    for c in (2, 4, 5, 6):
        (root / f"cam{c}").mkdir(exist_ok=True)
    (root / "exp").mkdir()
    (root / "exp/train_id.txt").write_text("1\n")
    (root / "exp/val_id.txt").write_text("2\n")
    (root / "exp/test_id.txt").write_text("3\n")


def test_sysu_rows_splits_and_modalities(tmp_path):
    sysu_tree(tmp_path)
    assert rows(tmp_path, "sysu-mm01") == {
        "cam1/0001/0001.jpg": (1, 1, "rgb", 1, "train"),
        "cam3/0001/0002.jpg": (1, 3, "ir", 2, "train"),
        "cam2/0002/0007.jpg": (2, 2, "rgb", 7, "val"),
        "cam6/0003/0010.jpg": (3, 6, "ir", 10, "query"),
        "cam4/0003/0004.jpg": (3, 4, "rgb", 4, "gallery"),
    }
    assert codes(tmp_path, "sysu-mm01") == {
        "cam5/0009/0001.jpg": "not_listed",
        "cam5/notes.txt": "unparseable",
        "cam4/0003/Thumbs.db": "not_image",
    }


def test_sysu_list_errors(tmp_path):
    sysu_tree(tmp_path)
    (tmp_path / "exp/test_id.txt").write_text("3,4\n")
    with pytest.raises(AtustcError, match=r"test_id.txt: identity 4 has no image in cam1-cam6 \(1 listed"):
        sysu_mm01.scan(tmp_path)
    (tmp_path / "exp/test_id.txt").write_text("3,x\n")
    with pytest.raises(AtustcError, match=r"test_id.txt: expected comma-separated identity numbers, got 'x'"):
        sysu_mm01.scan(tmp_path)
    (tmp_path / "exp/test_id.txt").write_text("3,1\n")
    with pytest.raises(AtustcError, match=r"test_id.txt: identity 1 is also in exp/train_id.txt"):
        sysu_mm01.scan(tmp_path)


def test_regdb_rows_of_a_trial_pid_from_the_folder(tmp_path):
    touch(
        tmp_path,
        "Visible/1/female_front_v_00001_1.bmp",
        "Thermal/1/female_front_t_00001_1.bmp",
        "Visible/2/male_back_v_00002_2.bmp",
        "Thermal/2/male_back_t_00002_2.bmp",
        "Thermal/3/male_back_t_00003_3.bmp",
    )
    idx = tmp_path / "idx"
    idx.mkdir()
    for t, (train, test) in {1: (1, 2), 2: (2, 1)}.items():
        for kind, pid in (("train", train), ("test", test)):
            g = "female_front" if pid == 1 else "male_back"
            (idx / f"{kind}_visible_{t}.txt").write_text(f"Visible/{pid}/{g}_v_0000{pid}_{pid}.bmp 0\n")
            (idx / f"{kind}_thermal_{t}.txt").write_text(f"Thermal/{pid}/{g}_t_0000{pid}_{pid}.bmp 0\n")
    got = rows(tmp_path, "regdb", trial=2)
    assert got == {
        "Visible/1/female_front_v_00001_1.bmp": (1, 1, "rgb", -1, "test"),
        "Thermal/1/female_front_t_00001_1.bmp": (1, 2, "ir", -1, "test"),
        "Visible/2/male_back_v_00002_2.bmp": (2, 1, "rgb", -1, "train"),
        "Thermal/2/male_back_t_00002_2.bmp": (2, 2, "ir", -1, "train"),
    }
    assert codes(tmp_path, "regdb", trial=2) == {"Thermal/3/male_back_t_00003_3.bmp": "not_listed"}
    assert rows(tmp_path, "regdb", trial=1)["Visible/1/female_front_v_00001_1.bmp"][-1] == "train"
    (idx / "test_thermal_2.txt").write_text("Visible/1/female_front_v_00001_1.bmp 0\n")
    with pytest.raises(AtustcError, match=r"test_thermal_2.txt: line 1: expected 'Thermal/<pid>/<name> <label>'"):
        regdb.scan(tmp_path, trial=2)
    with pytest.raises(AtustcError, match=r"--trial: RegDB releases trials 1-10, got 11"):
        regdb.scan(tmp_path, trial=11)


def test_llcm_rows_cameras_keep_their_numbers(tmp_path):
    touch(
        tmp_path,
        "train_vis/cam1/0001/0001_c01_0005_vis.jpg",
        "train_nir/cam4/0001/0001_c04_0006_nir.jpg",
        "train_nir/cam4/0001/0001_c04_0007_nir.jpg",  # in no train list
        "test_vis/cam2/0005/0005_c02_0001_vis.jpg",
        "test_nir/cam2/0005/0005_c02_0002_nir.jpg",
        "test_nir/cam9/0006/0006_c09_0003_nir.jpg",  # identity not in test_id.txt
        "test_vis/readme/x.jpg",
    )
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx/train_vis.txt").write_text("train_vis/cam1/0001/0001_c01_0005_vis.jpg 0\n")
    (tmp_path / "idx/train_nir.txt").write_text("train_nir/cam4/0001/0001_c04_0006_nir.jpg 0\n")
    (tmp_path / "idx/test_id.txt").write_text("5\n")
    assert rows(tmp_path, "llcm") == {
        "train_vis/cam1/0001/0001_c01_0005_vis.jpg": (1, 1, "rgb", 5, "train"),
        "train_nir/cam4/0001/0001_c04_0006_nir.jpg": (1, 4, "ir", 6, "train"),
        "test_vis/cam2/0005/0005_c02_0001_vis.jpg": (5, 2, "rgb", 1, "test"),
        "test_nir/cam2/0005/0005_c02_0002_nir.jpg": (5, 2, "ir", 2, "test"),
    }
    assert codes(tmp_path, "llcm") == {
        "train_nir/cam4/0001/0001_c04_0007_nir.jpg": "not_listed",
        "test_nir/cam9/0006/0006_c09_0003_nir.jpg": "not_listed",
        "test_vis/readme": "unparseable",
    }


# ---- bad input: one line naming the file, exit 2, nothing written ---------------------------


@pytest.mark.parametrize(
    ("fmt", "root_of", "message"),
    [
        ("sysu-mm01", "llcm", r"not a SYSU-MM01 root \(missing cam1\); it looks like a llcm root: use --format llcm"),
        ("regdb", "sysu-mm01", r"not a RegDB root \(missing Visible\); it looks like a sysu-mm01 root"),
        ("llcm", "regdb", r"not a LLCM root \(missing train_vis\); it looks like a regdb root"),
    ],
)
def test_a_root_laid_out_as_another_dataset(minis, fmt, root_of, message):
    with pytest.raises(AtustcError, match=message):
        MODULES[fmt].scan(minis[root_of])


def _break(root: Path, name: str, case: str) -> str:
    """Break a copied miniature; returns the expected start of the error's message body."""
    if case == "missing-list":
        rel = {"sysu-mm01": "exp/val_id.txt", "regdb": "idx/test_thermal_1.txt", "llcm": "idx/train_nir.txt"}[name]
        (root / rel).unlink()
        return f"{rel}: {'id list' if name == 'sysu-mm01' else 'list file'} not found"
    if name == "sysu-mm01":
        shutil.rmtree(root / "cam1" / "0007")
        for c in (2, 3, 4, 5, 6):
            shutil.rmtree(root / f"cam{c}" / "0007", ignore_errors=True)
        return "exp/test_id.txt: identity 7 has no image in cam1-cam6"
    rel = {"regdb": "idx/train_visible_1.txt", "llcm": "idx/train_vis.txt"}[name]
    first = (root / rel).read_text().split()[0]
    (root / first).unlink()
    return f"{rel}: line 1: image {first} not found"


@pytest.mark.parametrize("name", VI)
@pytest.mark.parametrize("case", ["other-layout", "missing-list", "missing-image"])
def test_bad_input_from_the_cli_exits_2_and_writes_nothing(minis, tmp_path, capsys, name, case):
    root = tmp_path / name
    shutil.copytree(minis[name], root)
    if case == "other-layout":
        root = minis["regdb" if name != "regdb" else "llcm"]
        expected = "not a "
    else:
        expected = _break(root, name, case)
    out = tmp_path / "out" / "t.parquet"
    with pytest.raises(SystemExit) as exc:
        main(["index", str(root), "--format", name, "-o", str(out), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_trial_option_only_for_datasets_with_trials(minis, tmp_path, capsys):
    with pytest.raises(AtustcError, match=r"--trial: dataset llcm releases one split"):
        index_dataset(minis["llcm"], "llcm", trial=2)
    out = tmp_path / "r.parquet"
    main(["index", str(minis["regdb"]), "--format", "regdb", "--trial", "4", "-o", str(out), "--quiet"])
    assert json.loads(out.with_suffix(".manifest.json").read_text())["trial"] == 4
    assert "trial" not in index_dataset(minis["llcm"], "llcm").manifest


# ---- synth -> index -> split -> eval from the CLI -----------------------------------------


def _features(table_path: Path, out: Path) -> None:
    """Features that know the identity (a per-pid vector plus noise), one head."""
    import pandas as pd

    t = pd.read_parquet(table_path)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1000, 16))
    feat = base[t["pid"].to_numpy() % 1000] + rng.normal(scale=0.8, size=(len(t), 16))
    save_features(Features(t["relpath"].to_numpy().astype(str), ("global",), feat[:, None].astype(np.float32)), out)


@pytest.mark.parametrize(
    ("name", "protocol", "scenarios"),
    [
        ("sysu-mm01", "sysu-mm01:all-settings", ["all-search", "indoor", "all-search-multi-shot", "indoor-multi-shot"]),
        ("regdb", "regdb", ["visible-to-thermal", "thermal-to-visible"]),
        ("llcm", "llcm", ["vis-to-nir", "nir-to-vis"]),
    ],
)
def test_synth_index_split_eval_from_the_cli(tmp_path, capsys, name, protocol, scenarios):
    root, table, split = tmp_path / "root", tmp_path / "t.parquet", tmp_path / "sp"
    main(["synth", str(root), "--layout", name, "--seed", "1"])
    main(["index", str(root), "--format", name, "-o", str(table), "--quiet"])
    main(["split", str(table), "-o", str(split)])
    assert json.loads((split / "split.json").read_text())["dataset"] == name
    _features(table, tmp_path / "f.npz")
    out = tmp_path / "e.json"
    main(["eval", "--table", str(split / "table.parquet"), "--features", str(tmp_path / "f.npz"),
          "--protocol", protocol, "--json", str(out), "--no-progress"])  # fmt: skip
    record = json.loads(out.read_text())
    assert list(record["scenarios"]) == scenarios
    for s in scenarios:
        assert record["scenarios"][s]["valid_queries"] > 0 and record["scenarios"][s]["R1"] > 0.5
    sampled = [s for s in scenarios if name != "regdb"]
    assert list(record.get("trials", {})) == sampled
    for s in sampled:
        assert [r["trial"] for r in record["trials"][s]] == list(range(10))
    capsys.readouterr()


def test_regdb_trials_averaged_from_the_cli(minis, tmp_path, capsys):
    tables = []
    for t in (1, 2, 3):
        tables.append(tmp_path / f"t{t}.parquet")
        main(["index", str(minis["regdb"]), "--format", "regdb", "--trial", str(t), "-o", str(tables[-1]), "-q"])
    _features(tables[0], tmp_path / "f.npz")
    singles = []
    for i, t in enumerate(tables):
        main(["eval", "--table", str(t), "--features", str(tmp_path / "f.npz"), "--protocol", "regdb",
              "--json", str(tmp_path / f"e{i}.json"), "--no-progress"])  # fmt: skip
        singles.append(json.loads((tmp_path / f"e{i}.json").read_text()))
    args = ["eval", "--features", str(tmp_path / "f.npz"), "--protocol", "regdb", "--no-progress"]
    main([*args, *(x for t in tables for x in ("--table", str(t))), "--json", str(tmp_path / "mean.json")])
    mean = json.loads((tmp_path / "mean.json").read_text())
    for s in ("visible-to-thermal", "thermal-to-visible"):
        for k in ("R1", "mAP", "mINP"):
            assert mean["scenarios"][s][k] == pytest.approx(np.mean([r["scenarios"][s][k] for r in singles]), abs=1e-12)
    v2t, t2v = (mean["scenarios"][s]["mAP"] for s in ("visible-to-thermal", "thermal-to-visible"))
    assert mean["summary"]["mean"]["mAP"] == pytest.approx((v2t + t2v) / 2, abs=1e-12)
    assert [e["table"] for e in mean["tables"]] == [str(t) for t in tables]
    assert "mean over 3 tables" in capsys.readouterr().out


def test_unknown_variant_is_one_line(minis, tmp_path, capsys):
    table = tmp_path / "t.parquet"
    main(["index", str(minis["sysu-mm01"]), "--format", "sysu-mm01", "-o", str(table), "-q"])
    _features(table, tmp_path / "f.npz")
    out = tmp_path / "e.json"
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--table", str(table), "--features", str(tmp_path / "f.npz"), "--protocol", "sysu-mm01:indor",
              "--json", str(out), "--no-progress"])  # fmt: skip
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "protocols/sysu-mm01.toml: unknown variant 'indor'" in err[0] and "indoor" in err[0]
    assert not out.exists()
