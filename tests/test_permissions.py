"""Every file and folder the toolkit writes gets the mode an ordinary write gives under the umask."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest

import atustc.io as aio
from atustc.io import (
    atomic_dir,
    atomic_path,
    current_umask,
    write_json_atomic,
    write_text_atomic,
)


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing(umask, monkeypatch):
    assert current_umask() == umask
    monkeypatch.setattr(aio, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("no /proc")), raising=False)
    assert current_umask() == umask  # the set-and-restore fallback
    assert os.umask(umask) == umask  # and it left the mask as it was


def test_atomic_writes_get_the_umask_mode(tmp_path, umask):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from atustc.features import Features, save_features
    from atustc.stats.plots import save_figure

    want = 0o666 & ~umask
    write_json_atomic(tmp_path / "a.json", {"a": 1})
    write_text_atomic(tmp_path / "lists" / "q.txt", "x\n")
    with atomic_path(tmp_path / "t.csv") as tmp:
        pd.DataFrame({"a": [1]}).to_csv(tmp, index=False)
    with atomic_path(tmp_path / "t.parquet") as tmp:
        pd.DataFrame({"a": [1]}).to_parquet(tmp)
    with atomic_path(tmp_path / "last.pt") as tmp:  # a checkpoint-like binary file
        with open(tmp, "wb") as fh:
            fh.write(b"\x80\x02")
    save_features(Features(np.array(["a.jpg"]), ("g",), np.zeros((1, 1, 2), np.float32)), tmp_path / "f.npz")
    fig = plt.figure()
    save_figure(fig, tmp_path / "fig", formats=("png",))
    plt.close(fig)
    written = ["a.json", "lists/q.txt", "t.csv", "t.parquet", "last.pt", "f.npz", "fig.png"]
    assert {n: oct(_mode(tmp_path / n)) for n in written} == {n: oct(want) for n in written}
    assert _mode(tmp_path / "lists") == 0o777 & ~umask


def test_atomic_dir_mode_and_swap(tmp_path, umask):
    target = tmp_path / "split"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    assert _mode(target) == 0o777 & ~umask
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "old"
    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]  # no temporary or old folder left


def test_synth_tree_gets_the_umask_mode(tmp_path, umask):
    from atustc.synth import SynthConfig, synthesize

    cfg = SynthConfig.named("test", identities=2, outfits_per_id=(1, 1), dates_per_id=(1, 1), frames_per_camera=(1, 1))
    root = synthesize(tmp_path / "data", cfg, progress=False).root
    dirs = [root, *(p for p in root.rglob("*") if p.is_dir())]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    assert {oct(_mode(p)) for p in dirs} == {oct(0o777 & ~umask)}
    assert {oct(_mode(p)) for p in files} == {oct(0o666 & ~umask)}


def test_miniature_tree_gets_the_umask_mode(tmp_path, umask):
    from atustc.synth.layouts import Shot, write_tree

    write_tree(tmp_path / "mini", [Shot("bbox/0001_c1s1_000001.jpg", 1, 1, 1, 1, 1)], {"readme.txt": "x"}, seed=0)
    root = tmp_path / "mini"
    assert {oct(_mode(p)) for p in (root, root / "bbox")} == {oct(0o777 & ~umask)}
    assert {oct(_mode(p)) for p in (root / "readme.txt", root / "bbox/0001_c1s1_000001.jpg")} == {oct(0o666 & ~umask)}
