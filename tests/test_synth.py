"""Synthetic AT-USTC: layout, determinism, IR rendering, flags, and the difficulty ordering."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from atustc.errors import AtustcError
from atustc.synth import SynthConfig, make_plan, render_image, synthesize
from atustc.synth.people import BAG, HAIR, HAIR_STYLES, TOP, draw_identity, draw_outfit
from atustc.synth.probe import band_features
from atustc.synth.render import sprite

NAME = re.compile(r"p(\d{3})-d(\d{2})-c(\d{2})/cam(\d{2})-f(\d+)-(\d{4,})\.jpg")


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "ds"
    result = synthesize(root, SynthConfig.named("test"), progress=False)
    return root, result


def test_layout_names_and_pixels(test_set):
    root, result = test_set
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix == ".jpg")
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == ["atustc-synth.json"]  # the marker only
    assert len(files) == result.images == len(make_plan(SynthConfig.named("test")))
    assert all(NAME.fullmatch(f) for f in files)
    cams = {int(NAME.fullmatch(f)[4]) for f in files}
    assert cams <= set(range(1, 17)) and cams & set(range(1, 9)) and cams & set(range(9, 17))
    for f in files[:40]:
        arr = np.asarray(Image.open(root / f))
        assert arr.shape == (64, 32, 3)
        cam = int(NAME.fullmatch(f)[4])
        spread = np.abs(arr[..., 0].astype(int) - arr[..., 2].astype(int)).max()
        if cam >= 9:
            assert spread <= 8  # IR: no hue (equal channels up to JPEG rounding)
        else:
            assert spread > 30


def test_same_seed_same_bytes_and_workers_do_not_matter(test_set, tmp_path):
    root, _ = test_set
    synthesize(tmp_path / "again", SynthConfig.named("test"), progress=False, workers=2)
    assert tree_digest(tmp_path / "again") == tree_digest(root)


def test_different_seed_gives_different_data(test_set, tmp_path):
    root, _ = test_set
    other = SynthConfig.named("test", seed=1, identities=4)
    synthesize(tmp_path / "s1", other, progress=False)
    a = render_image(SynthConfig.named("test"), 1, 1, 1, 1, 10)
    b = render_image(SynthConfig.named("test", seed=1), 1, 1, 1, 1, 10)
    assert not np.array_equal(a, b)
    assert set(tree_digest(tmp_path / "s1").values()).isdisjoint(tree_digest(root).values())


def test_identity_split_and_per_clip_selection():
    plan = make_plan(SynthConfig.named("default", identities=20))
    by_pid = {}
    for p, f in zip(plan.pid.tolist(), plan.flag.tolist()):
        by_pid.setdefault(p, set()).add(f)
    train = [p for p, fs in by_pid.items() if fs <= {0, 1}]
    test = [p for p, fs in by_pid.items() if fs <= set(range(2, 11))]
    assert len(train) + len(test) == 20 and len(test) == 10  # 1:1, no identity on both sides
    assert sum(by_pid[p] == {1} for p in train) == 2  # 20% of the train ids, whole identities
    clip = plan.pid * 10_000 + plan.camera * 100 + plan.clothes
    for flags in (2, 4), (3, 5), (6, 8), (7, 9):
        sel = np.isin(plan.flag, flags)
        assert np.bincount(np.unique(clip[sel], return_inverse=True)[1]).max() <= 3
    ir = plan.camera >= 9
    assert set(plan.flag[ir & (plan.flag >= 2)].tolist()) <= {4, 5, 8, 9, 10}
    assert set(plan.flag[~ir & (plan.flag >= 2)].tolist()) <= {2, 3, 6, 7, 10}


def test_people_keep_identity_cues_and_outfits_change():
    cfg = SynthConfig.named("test")
    # same person, same outfit, two cameras: different pixels; IR intensity is not the visible luminance
    assert not np.array_equal(render_image(cfg, 3, 1, 1, 1, 5), render_image(cfg, 3, 1, 1, 2, 5))
    outfits = [draw_outfit(0, p, c) for p in range(1, 101) for c in (1, 2)]
    lum = np.array([o.top_rgb @ np.array([0.299, 0.587, 0.114]) for o in outfits])
    ir = np.array([o.ir[TOP] for o in outfits])
    assert abs(np.corrcoef(lum, ir)[0, 1]) < 0.3
    assert len({round(float(o.ir[BAG]), 6) for o in outfits}) == len(outfits)


def test_body_cues_link_the_modalities_loosely_and_shapes_vary():
    """Skin and hair keep a loose visible-IR link (a model can learn it, no colour statistic equals it); hair styles
    and builds give every person a silhouette that is the same in both modalities and in every outfit."""
    people = [draw_identity(0, p) for p in range(1, 401)]
    skin_lum = np.array([i.skin_rgb.mean() for i in people])
    hair_lum = np.array([i.hair_rgb.mean() for i in people])
    skin_ir = np.array([i.skin_ir for i in people])
    hair_ir = np.array([i.hair_ir for i in people])
    assert 0.5 < np.corrcoef(skin_lum, skin_ir)[0, 1] < 0.95  # darker skin is darker in IR, with spread
    assert 0.5 < np.corrcoef(hair_lum, hair_ir)[0, 1] < 0.95
    assert not np.allclose(skin_ir, skin_lum, atol=0.05)  # IR is not the visible luminance
    assert {i.hair_style for i in people} == set(range(len(HAIR_STYLES)))
    builds = np.array([i.build for i in people])
    assert builds.max() / builds.min() > 1.7
    # one person's silhouette (everything but the bag) and hair are the same in two outfits
    person = next(p for p in range(1, 401) if HAIR_STYLES[draw_identity(0, p).hair_style] == "bun")
    a, b = (sprite(draw_identity(0, person), draw_outfit(0, person, c), 0, 96) for c in (1, 2))
    keep = (a != BAG) & (b != BAG)
    assert np.array_equal((a > 0)[keep], (b > 0)[keep]) and np.array_equal(a == HAIR, b == HAIR)
    assert (a[:10] == HAIR).sum() > 0  # the bun sits on top of the head
    shaved = next(p for p in range(1, 401) if HAIR_STYLES[draw_identity(0, p).hair_style] == "shaved")
    assert (sprite(draw_identity(0, shaved), draw_outfit(0, shaved, 1), 0, 96) == HAIR).sum() == 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"identities": 1}, "identities must be at least 2"),
        ({"image_size": (8, 8)}, "image size must be between"),
        ({"frames_per_camera": (3, 2)}, "frames_per_camera must be a range"),
        ({"jpeg_quality": 0}, "jpeg_quality must be 1-95"),
    ],
)
def test_bad_config(overrides, message):
    with pytest.raises(AtustcError, match=message):
        SynthConfig.named("test", **overrides)


def test_unknown_size_and_non_empty_output(test_set, tmp_path):
    with pytest.raises(AtustcError, match="unknown size 'huge'; sizes: test, default, large"):
        SynthConfig.named("huge")
    root, _ = test_set
    with pytest.raises(AtustcError, match="folder exists and is not empty; pass --overwrite"):
        synthesize(root, SynthConfig.named("test"), progress=False)
    small = tmp_path / "small"
    synthesize(small, SynthConfig.named("test", identities=2), progress=False)
    before = tree_digest(small)
    synthesize(small, SynthConfig.named("test", identities=2, seed=3), progress=False, overwrite=True)
    assert tree_digest(small) != before and not list(tmp_path.glob(".small*"))  # no temp or old tree left


def test_cli_options(tmp_path, capsys):
    from atustc.cli import main

    main(["synth", str(tmp_path / "d"), "--size", "test", "--identities", "2", "--image-size", "32x16", "-q"])
    files = [p for p in (tmp_path / "d").rglob("*.jpg")]
    assert files and Image.open(files[0]).size == (16, 32)
    assert "images of 2 identities (32x16, seed 0)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["synth", str(tmp_path / "e"), "--image-size", "big"])
    assert exc.value.code == 2
    assert "error: --image-size must be HEIGHTxWIDTH (e.g. 128x64), got 'big'" in capsys.readouterr().err


# ---- the difficulty ordering: a hand-crafted embedding scored with the six official rules ----


def six_scenarios(pid, clothes, camera, ir, flag, feat):
    """Plain per-query R1 and mAP of the six scenarios (the official junk rules, written out)."""
    out = {}
    for name in ("DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT"):
        st = name.endswith("ST")
        qf, gf = ((2, 4), (6, 8)) if st else ((3, 5), (7, 9))
        gallery = np.flatnonzero(np.isin(flag, gf))
        r1, aps = [], []
        for q in np.flatnonzero(np.isin(flag, qf)):
            g = gallery
            same = pid[g] == pid[q]
            junk = same & (camera[g] == camera[q])  # same person, same camera
            if name.startswith("DT"):
                junk |= ir[g] | ir[q]
            elif name.startswith("NT"):
                junk |= ~ir[g] | ~ir[q]
            else:
                junk |= ir[g] == ir[q]
            junk |= same & ((clothes[g] == clothes[q]) != st)  # ST: same clothes; LT: other clothes
            g, match = g[~junk], same[~junk]
            if not match.any():
                continue
            m = match[np.argsort(-(feat[g] @ feat[q]), kind="stable")]
            r1.append(float(m[0]))
            hits = np.flatnonzero(m)
            aps.append(float(np.mean((np.arange(len(hits)) + 1) / (hits + 1))))
        out[name] = (np.mean(r1), np.mean(aps))
    return out


def test_difficulty_ordering_matches_the_paper(tmp_path):
    from atustc.datasets import index_dataset
    from atustc.split import select_clip_pools

    root = tmp_path / "hard"
    synthesize(root, SynthConfig.named("test", identities=24, seed=7), progress=False)
    table = index_dataset(root).table
    cols = {c: table[c].to_numpy() for c in ("pid", "clothes", "camera", "date", "frame")}
    ir = table["modality"].to_numpy() == "ir"
    # score every identity as a test identity to have enough queries
    flag = select_clip_pools(cols["pid"], cols["camera"], cols["clothes"], ir, cols["date"], cols["frame"], seed=0)
    feat = np.stack([band_features(np.asarray(Image.open(root / r))) for r in table["relpath"]])
    res = six_scenarios(cols["pid"], cols["clothes"], cols["camera"], ir, flag, feat)
    for k in (0, 1):  # R1 and mAP
        s = {name: v[k] for name, v in res.items()}
        assert np.mean([s["DT-ST"], s["NT-ST"]]) > np.mean([s["DT-LT"], s["NT-LT"]]) + 0.1
        assert np.mean([s["DT-ST"], s["DT-LT"], s["NT-ST"], s["NT-LT"]]) > np.mean([s["AD-ST"], s["AD-LT"]]) + 0.1
        assert s["DT-ST"] > s["DT-LT"] and s["NT-ST"] > s["NT-LT"] and s["AD-ST"] > s["AD-LT"] - 0.05
    # colour alone is near chance wherever the clothes or the modality change (goal 5 of issue 11)
    rng = np.random.default_rng(0)
    draws = [
        six_scenarios(cols["pid"], cols["clothes"], cols["camera"], ir, flag, rng.standard_normal(feat.shape))
        for _ in range(5)
    ]
    for name in ("DT-LT", "NT-LT", "AD-ST", "AD-LT"):
        chance_r1, chance_map = (np.mean([d[name][k] for d in draws]) for k in (0, 1))
        assert res[name][0] <= chance_r1 + 0.05 and res[name][1] <= chance_map + 0.04, (name, res[name])
    for name in ("DT-ST", "NT-ST"):
        assert res[name][0] > 0.2  # while the same outfit in the same modality is easy for it


def test_test_size_is_trainable_at_the_tiny_budget():
    """P x K = 8 x 4 with two RGB and two IR images per identity (pk_modality), and all four test pools filled."""
    from atustc.methods.budget import TINY

    plan = make_plan(SynthConfig.named("test"))
    train = plan.flag == 0
    ir = plan.camera >= 9
    both = [
        p
        for p in np.unique(plan.pid[train])
        if (train & ir & (plan.pid == p)).sum() >= TINY.num_instances // 2
        and (train & ~ir & (plan.pid == p)).sum() >= TINY.num_instances // 2
    ]
    assert len(both) >= TINY.num_identities
    assert set(range(2, 10)) <= set(plan.flag.tolist())  # ST and LT query and gallery, RGB and IR


def test_default_size_has_many_identities_with_few_images_each():
    plan = make_plan(SynthConfig.named("default"))
    train_ids = np.unique(plan.pid[plan.flag == 0])
    assert len(train_ids) == 80 and len(np.unique(plan.pid[plan.flag == 1])) == 20
    assert 35 <= len(plan) / 200 <= 55  # images per identity (AT-USTC: about 1,500; the large size: 120)
    assert len(make_plan(SynthConfig.named("large"))) > 30_000 and SynthConfig.named("large").identities == 270


def test_synth_version_is_part_of_the_bench_cache_key(monkeypatch):
    import atustc.synth
    from atustc.bench.data import synthetic_key

    key = synthetic_key(SynthConfig.named("test"))
    monkeypatch.setattr(atustc.synth, "SYNTH_VERSION", atustc.synth.SYNTH_VERSION + 1)
    assert synthetic_key(SynthConfig.named("test")) != key
