"""Issue 13's bad-input list, end to end from the CLI: one line naming the file or option, exit 2,
and nothing half-written: an earlier output at the same path stays as it was.

(The scan-level messages of each case are in ``tests/test_reid_datasets.py``.)
"""

import json
import shutil

import numpy as np
import pytest

from atustc.cli import main
from atustc.features import save_features
from atustc.synth.layouts import write_layout
from atustc.table import save_table
from tests.reid_standin import features_for, index_root


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad-input")
    for name in ("msmt17", "prcc"):
        write_layout(base / name, name, seed=0)
    return base


def fails(capsys, args: list[str], message: str) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other-layout", "not a MSMT17 (V1 train/ + test/ or V2 mask_train_v2/ + mask_test_v2/) root"),
        ("missing-list", "list_gallery.txt: list file not found"),
        ("missing-image", "list_val.txt: line 1: image train/"),
    ],
)
def test_failed_index_keeps_the_earlier_table(roots, tmp_path, capsys, case, message):
    root = tmp_path / "msmt"
    shutil.copytree(roots / "msmt17", root)
    out = tmp_path / "t.parquet"
    main(["index", str(root), "--format", "msmt17", "-o", str(out), "--quiet"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    if case == "other-layout":
        root = roots / "prcc"
    elif case == "missing-list":
        (root / "list_gallery.txt").unlink()
    else:
        (root / "train" / (root / "list_val.txt").read_text().split()[0]).unlink()
    fails(capsys, ["index", str(root), "--format", "msmt17", "-o", str(out), "--quiet"], message)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_unknown_variant_names_the_file_and_writes_nothing(roots, tmp_path, capsys):
    table = index_root("prcc", roots / "prcc")
    save_table(table, tmp_path / "t.parquet")
    save_features(features_for(table), tmp_path / "f.npz")
    (tmp_path / "e.json").write_text("{}")
    args = ["eval", "--table", str(tmp_path / "t.parquet"), "--features", str(tmp_path / "f.npz"), "--no-progress"]
    args += ["--json", str(tmp_path / "e.json"), "--csv", str(tmp_path / "e.csv")]
    fails(capsys, [*args, "--protocol", "prcc:single-shoot"], "prcc.toml: unknown variant 'single-shoot' (variants:")
    assert (tmp_path / "e.json").read_text() == "{}" and not (tmp_path / "e.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.json", "f.npz", "t.parquet"]
    main([*args, "--protocol", "prcc:single-shot"])  # the real one works on the same files
    assert np.isfinite(json.loads((tmp_path / "e.json").read_text())["scenarios"]["same-clothes"]["mAP"])
