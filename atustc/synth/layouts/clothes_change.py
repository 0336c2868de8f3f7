"""Miniatures of the clothes-changing datasets PRCC, LTCC and DeepChange in their released layouts."""

from __future__ import annotations

import numpy as np

from atustc.synth.layouts._tree import Shot, cameras


def prcc(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """prcc/rgb/{train,val}/<pid>/<A|B|C>_cropped_rgb<n>.jpg and rgb/test/{A,B,C}/<pid>/cropped_rgb<n>.jpg."""
    shots = []
    for part, first, n in (("train", 1, 6), ("val", 7, 3), ("test", 10, 5)):
        for pid in range(first, first + n):
            for letter, cam in (("A", 1), ("B", 2), ("C", 3)):
                for _ in range(2 if letter != "A" else 3):
                    frame = int(rng.integers(1, 999))
                    clothes = 2 if letter == "C" else 1
                    if part == "test":
                        rel = f"rgb/test/{letter}/{pid:03d}/cropped_rgb{frame:03d}.jpg"
                    else:
                        rel = f"rgb/{part}/{pid:03d}/{letter}_cropped_rgb{frame:03d}.jpg"
                    shots.append(Shot(rel, pid, 1, clothes, cam, frame))
    return _unique(shots), {}


def ltcc(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """LTCC_ReID/{train,query,test}/<pid>_<clothes>_c<cam>_<frame>.png and info/ id lists.

    Every other person changes clothes (2 outfits); the others keep one. Test people have one
    query per outfit.
    """
    shots: list[Shot] = []
    info = {
        "cloth-change_id_train.txt": [],
        "cloth-unchange_id_train.txt": [],
        "cloth-change_id_test.txt": [],
        "cloth-unchange_id_test.txt": [],
    }
    for part, first, n in (("train", 1, 6), ("test", 7, 6)):
        for pid in range(first, first + n):
            outfits = 2 if pid % 2 else 1
            info[f"cloth-{'change' if outfits > 1 else 'unchange'}_id_{part}.txt"].append(f"{pid}\n")
            for clothes in range(1, outfits + 1):
                for j, cam in enumerate(cameras(rng, 2)):
                    for k in range(2):
                        frame = int(rng.integers(1, 99999))
                        folder = ("query" if j == 0 and k == 0 else "test") if part == "test" else "train"
                        shots.append(
                            Shot(
                                f"{folder}/{pid:03d}_{clothes}_c{cam}_{frame:06d}.png",
                                pid,
                                clothes,
                                clothes,
                                cam,
                                frame,
                            )
                        )
    return _unique(shots), {f"info/{k}": "".join(v) for k, v in info.items()}


def deepchange(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """DeepChange in miniature: P<pid>_C<cam>_<date>_<time>_<index>_bbox.jpg in the five set folders, with the bbox lists.

    Each person is seen on 2 days (one outfit a day), on each day in 2 tracklets (camera and
    time), one of which reuses the other day's camera, so same-camera positives exist.
    """
    shots: list[Shot] = []
    lists: dict[str, list[str]] = {}
    tracklet = 0
    for part, first, n in (("train", 1, 6), ("val", 7, 3), ("test", 10, 5)):
        for pid in range(first, first + n):
            days = sorted(int(d) for d in rng.choice(np.arange(1, 28), size=2, replace=False))
            cams = cameras(rng, 3)
            for d, day in enumerate(days):
                for t, cam in enumerate((cams[0], cams[1 + d])):
                    tracklet += 1
                    hhmmss = 80000 + 10000 * t + int(rng.integers(0, 5959))
                    for k in range(2):
                        name = f"P{pid:04d}_C{cam:02d}_202003{day:02d}_{hhmmss:06d}_{k:06d}_bbox.jpg"
                        if part == "train":
                            folder = "train-set"
                        else:
                            query = d == 0 and t == 0
                            folder = f"{part}-set-{'query' if query else 'gallery'}"
                        lists.setdefault(f"{folder}-bbox.txt", []).append(f"{name},{tracklet}\n")
                        shots.append(Shot(f"{folder}/{name}", pid, day, d + 1, cam, 100 * tracklet + k))
    return shots, {k: "".join(v) for k, v in lists.items()}


def _unique(shots: list[Shot]) -> list[Shot]:
    """Drop shots whose relpath repeats an earlier one (random frame numbers can collide)."""
    seen: set[str] = set()
    out = []
    for s in shots:
        if s.relpath not in seen:
            seen.add(s.relpath)
            out.append(s)
    return out
