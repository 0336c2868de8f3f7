"""Miniatures of the visible-infrared datasets SYSU-MM01, RegDB and LLCM in their released layouts.

RGB cameras are drawn by the renderer's RGB cameras 1-8 and infrared ones by its IR cameras
9-16, so the modalities differ in the pixels as they do in the releases.
"""

from __future__ import annotations

import numpy as np

from atustc.synth.layouts._tree import Shot

#: SYSU-MM01 camera -> renderer camera (3 and 6 are infrared)
SYSU_RENDER = {1: 1, 2: 2, 3: 11, 4: 4, 5: 5, 6: 14}


def sysu_mm01(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """cam1-cam6/<pid:04d>/<n:04d>.jpg and exp/{train,val,test}_id.txt.

    4 train, 2 val and 5 test people. Every person is seen by the IR cameras 3 and 6 and by
    three or four RGB cameras (indoor cameras 1 and 2 for most); test people have 12 images
    in RGB camera 1 or 4 (more than a multi-shot draw of 10 keeps) and 2-3 elsewhere.
    """
    shots: list[Shot] = []
    ids = {"train": [1, 2, 3, 4], "val": [5, 6], "test": [7, 8, 9, 10, 11]}
    for part, pids in ids.items():
        for pid in pids:
            rgb = [1, 2, 4, 5] if pid % 3 else [2, 4, 5]
            for cam in sorted([*rgb, 3, 6]):
                many = part == "test" and cam == (1 if pid % 2 else 4)
                n = 12 if many else int(rng.integers(2, 4))
                for k in range(1, n + 1):
                    shots.append(Shot(f"cam{cam}/{pid:04d}/{k:04d}.jpg", 300 + pid, 1, 1, SYSU_RENDER[cam], k))
    texts = {f"exp/{part}_id.txt": ",".join(str(p) for p in pids) + "\n" for part, pids in ids.items()}
    return shots, texts


def regdb(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """Visible/<pid>/ and Thermal/<pid>/ .bmp images of 8 people and idx/ lists of 10 trials (4 / 4 people each)."""
    shots: list[Shot] = []
    names: dict[tuple[int, str], list[str]] = {}
    for pid in range(1, 9):
        gender = "female" if pid % 2 else "male"
        for folder, letter, cam in (("Visible", "v", 1), ("Thermal", "t", 9)):
            for k in range(4):
                n = 1000 * pid + k
                rel = f"{folder}/{pid}/{gender}_front_{letter}_{n:05d}_{pid}.bmp"
                names.setdefault((pid, folder), []).append(rel)
                shots.append(Shot(rel, 400 + pid, 1, 1, cam, k))
    texts = {}
    for trial in range(1, 11):
        test = set(int(p) for p in rng.choice(np.arange(1, 9), size=4, replace=False))
        for kind in ("train", "test"):
            people = sorted(p for p in range(1, 9) if (p in test) == (kind == "test"))
            for folder, word in (("Visible", "visible"), ("Thermal", "thermal")):
                lines = [f"{rel} {label}\n" for label, p in enumerate(people) for rel in names[(p, folder)]]
                texts[f"idx/{kind}_{word}_{trial}.txt"] = "".join(lines)
    return shots, texts


def llcm(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """{train,test}_{vis,nir}/cam<c>/<pid:04d>/<pid>_c<cc>_<n>_<vis|nir>.jpg, idx/train_{vis,nir}.txt, idx/test_id.txt.

    VIS cameras 1-3, NIR cameras 1, 2 and 4 (the release has no NIR camera 3); 4 train and 5
    test people, 2-3 images per camera, so a query's identity also shows in its own camera in
    the other modality (the same-camera junk rule bites).
    """
    shots: list[Shot] = []
    lists: dict[str, list[str]] = {"idx/train_vis.txt": [], "idx/train_nir.txt": []}
    ids = {"train": [1, 2, 3, 4], "test": [5, 6, 7, 8, 9]}
    for part, pids in ids.items():
        for label, pid in enumerate(pids):
            for mod, cams, offset in (("vis", (1, 2, 3), 0), ("nir", (1, 2, 4), 8)):
                for cam in cams:
                    for k in range(int(rng.integers(2, 4))):
                        frame = 100 * cam + k
                        rel = f"{part}_{mod}/cam{cam}/{pid:04d}/{pid:04d}_c{cam:02d}_{frame:04d}_{mod}.jpg"
                        shots.append(Shot(rel, 500 + pid, 1, 1, cam + offset, frame))
                        if part == "train":
                            lists[f"idx/train_{mod}.txt"].append(f"{rel} {label}\n")
    texts = {k: "".join(v) for k, v in lists.items()}
    texts["idx/test_id.txt"] = ",".join(str(p) for p in ids["test"]) + "\n"
    return shots, texts
