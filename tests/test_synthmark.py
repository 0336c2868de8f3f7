"""The marker of ``atustc synth``: written into every tree, carried by ``atustc index``, shown by ``atustc stats``."""

import json
import shutil

import pandas as pd
import pytest

from atustc.cli import main
from atustc.datasets import index_dataset
from atustc.stats.plotkit import COMPUTED_NOTE, SYNTHETIC_NOTE, computed_notes
from atustc.synth import SYNTH_VERSION, SynthConfig, synthesize
from atustc.synthmark import MARKER_NAME, read_marker


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("mark") / "ds"
    synthesize(root, SynthConfig.named("test", identities=4, seed=5), progress=False)
    return root


def test_synth_writes_a_deterministic_marker_with_what_drew_the_tree(tree, tmp_path):
    info = json.loads((tree / MARKER_NAME).read_text())
    assert info["generator"] == "atustc synth" and info["layout"] == "atustc"
    assert info["seed"] == 5 and info["synth_version"] == SYNTH_VERSION
    assert info["config"]["identities"] == 4 and info["config"]["image_size"] == [64, 32]
    synthesize(tmp_path / "again", SynthConfig.named("test", identities=4, seed=5), progress=False)
    assert (tmp_path / "again" / MARKER_NAME).read_bytes() == (tree / MARKER_NAME).read_bytes()


def test_index_records_the_marker_and_does_not_reject_it(tree, tmp_path):
    result = index_dataset(tree, "atustc")
    assert result.manifest["synthetic"] == read_marker(tree)
    assert result.manifest["rejected"] == [] and MARKER_NAME not in set(result.table["relpath"])
    plain = tmp_path / "plain"
    shutil.copytree(tree, plain)
    (plain / MARKER_NAME).unlink()
    again = index_dataset(plain, "atustc")
    assert "synthetic" not in again.manifest
    assert again.manifest["table_hash"] == result.manifest["table_hash"]  # the table does not change


def test_a_miniature_indexed_from_a_sub_folder_finds_the_marker_one_level_up(tmp_path):
    main(["synth", str(tmp_path / "c"), "--layout", "cuhk03"])
    assert read_marker(tmp_path / "c" / "labeled")["layout"] == "cuhk03"
    assert index_dataset(tmp_path / "c" / "labeled", "cuhk03").manifest["synthetic"]["seed"] == 0


def test_a_marker_that_is_not_a_json_object_is_ignored(tmp_path):
    (tmp_path / MARKER_NAME).write_text("[1, 2]")
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER_NAME).write_text("{not json")
    assert read_marker(tmp_path) is None


def test_strict_index_accepts_the_expected_differences_of_a_synthetic_tree(tree, tmp_path, capsys):
    main(["index", str(tree), "-o", str(tmp_path / "t.parquet"), "--strict"])
    out = capsys.readouterr().out
    assert "synthetic tree (atustc synth, seed 5)" in out and "as expected" in out
    assert "differs from the published statistics" not in out


def test_stats_labels_a_synthetic_table_and_keeps_the_published_point(tree, tmp_path, capsys):
    table = tmp_path / "t.parquet"
    main(["index", str(tree), "-o", str(table), "-q"])
    main(["stats", str(table), "-o", str(tmp_path / "out"), "--no-plots"])
    scale = pd.read_csv(tmp_path / "out" / "scale.csv")
    assert scale.loc[scale["source"] == "computed", "dataset"].tolist() == ["atustc (synthetic)"]
    names = scale["dataset"].tolist()
    assert names.index("atustc (synthetic)") == names.index("AT-USTC") + 1  # beside the real dataset
    main(["stats", str(table), "-o", str(tmp_path / "named"), "--no-plots", "--label", "mine"])
    assert "mine" in pd.read_csv(tmp_path / "named" / "scale.csv")["dataset"].tolist()  # the user's name wins
    (tmp_path / "t.manifest.json").unlink()
    main(["stats", str(table), "-o", str(tmp_path / "bare"), "--no-plots"])
    assert "atustc" in pd.read_csv(tmp_path / "bare" / "scale.csv")["dataset"].tolist()
    capsys.readouterr()


def test_stats_names_a_malformed_manifest(tree, tmp_path, capsys):
    table = tmp_path / "t.parquet"
    main(["index", str(tree), "-o", str(table), "-q"])
    (tmp_path / "t.manifest.json").write_text("{oops")
    with pytest.raises(SystemExit) as exc:
        main(["stats", str(table)])
    assert exc.value.code == 2 and "t.manifest.json: not valid JSON" in capsys.readouterr().err
    (tmp_path / "t.manifest.json").write_text("[1, 2]")  # valid JSON, but not the object index writes
    with pytest.raises(SystemExit) as exc:
        main(["stats", str(table)])
    assert exc.value.code == 2 and "t.manifest.json: not a JSON object; write it again with atustc index" in (
        capsys.readouterr().err
    )


def test_computed_notes_by_hand():
    frame = pd.DataFrame({"dataset": ["AT-USTC", "atustc (synthetic)"], "source": ["published", "computed"]})
    assert computed_notes(frame) == [COMPUTED_NOTE, SYNTHETIC_NOTE]
    assert computed_notes(frame.assign(dataset=["AT-USTC", "mine"])) == [COMPUTED_NOTE]
    assert computed_notes(frame.iloc[:1]) == []
