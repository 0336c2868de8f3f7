"""Atomic writes and the saved-features format."""

import numpy as np
import pytest

from atustc.errors import AtustcError
from atustc.features import Features, load_features, save_features
from atustc.io import atomic_path, read_json, write_json_atomic


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert read_json(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_read_json_errors(tmp_path):
    with pytest.raises(AtustcError, match="x.json: file not found"):
        read_json(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{oops")
    with pytest.raises(AtustcError, match=r"y.json: not valid JSON"):
        read_json(tmp_path / "y.json")


def test_features_round_trip(tmp_path):
    f = Features(np.array(["a.jpg", "b.jpg"]), ("DT-ST", "AD-LT"), np.arange(12, dtype=np.float32).reshape(2, 2, 3))
    save_features(f, tmp_path / "f.npz")
    back = load_features(tmp_path / "f.npz")
    assert back.heads == ("DT-ST", "AD-LT")
    assert back.relpath.tolist() == ["a.jpg", "b.jpg"]
    np.testing.assert_array_equal(back.feat, f.feat)
    assert back.head_index("AD-LT") == 1
    with pytest.raises(AtustcError, match="unknown head 'NT-ST'"):
        back.head_index("NT-ST")


def test_single_head_serves_every_head():
    f = Features(np.array(["a"]), ("global",), np.zeros((1, 1, 4), np.float32))
    assert f.head_index("AD-LT") == 0


def test_load_features_rejects_nan_and_bad_shapes(tmp_path):
    feat = np.zeros((2, 1, 3), np.float32)
    feat[1, 0, 2] = np.nan
    np.savez(tmp_path / "nan.npz", relpath=np.array(["a", "b"]), heads=np.array(["g"]), feat=feat)
    with pytest.raises(AtustcError, match=r"row 1 \(b\): feature has NaN or infinite values"):
        load_features(tmp_path / "nan.npz")
    np.savez(tmp_path / "short.npz", relpath=np.array(["a"]), heads=np.array(["g"]), feat=np.zeros((2, 1, 3)))
    with pytest.raises(AtustcError, match=r"short.npz: 1 relpaths for 2 feature rows"):
        load_features(tmp_path / "short.npz")
    np.savez(tmp_path / "miss.npz", feat=np.zeros((2, 1, 3)))
    with pytest.raises(AtustcError, match=r"missing array\(s\) relpath, heads"):
        load_features(tmp_path / "miss.npz")
