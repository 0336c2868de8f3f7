"""Miniatures of Market-1501 and CUHK03-NP (Market-style bounding_box_train / query / bounding_box_test)."""

from __future__ import annotations

import numpy as np

from atustc.synth.layouts._tree import Shot, cameras

TRAIN_IDS, TEST_IDS = 8, 6


def _people(rng: np.random.Generator, n_cams: int, max_cam: int, per_cam: int, make, test: bool, first: int, step: int):
    """Shots of ``TEST_IDS`` or ``TRAIN_IDS`` people; the first image of each (person, camera) of a test person is a query."""
    shots = []
    n = TEST_IDS if test else TRAIN_IDS
    for k in range(n):
        pid = first + step * k
        for cam in cameras(rng, n_cams, 1, max_cam):
            for j in range(per_cam):
                folder = ("query" if j == 0 else "bounding_box_test") if test else "bounding_box_train"
                frame = int(rng.integers(1, 5000))
                shots.append(make(folder, pid, cam, frame, j, person=pid))
    return shots


def market1501(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """Market-1501-v15.09.15 in miniature: 8 train and 6 test people, 3 pid-0 distractors, 3 pid -1 junk boxes."""

    def make(folder: str, pid: int, cam: int, frame: int, j: int, person: int) -> Shot:
        name = f"{pid:04d}_c{cam}s1_{frame:06d}_{j:02d}.jpg" if pid >= 0 else f"-1_c{cam}s1_{frame:06d}_{j:02d}.jpg"
        return Shot(f"{folder}/{name}", person, 1, 1, cam, frame)

    shots = _people(rng, 2, 6, 3, make, False, 2, 2) + _people(rng, 3, 6, 3, make, True, 1, 2)
    for j in range(3):  # distractors (pid 0) and junk boxes (pid -1), drawn as people of their own
        shots.append(make("bounding_box_test", 0, j + 1, 100 + j, j, person=900 + j))
        shots.append(make("bounding_box_test", -1, j + 1, 200 + j, j, person=950 + j))
    return shots, {}


def cuhk03(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """cuhk03-np/{detected,labeled} in miniature: the same 8 train and 6 test people, cameras 1 and 2."""
    shots: list[Shot] = []
    seed = int(rng.integers(0, 2**31))
    for layout, jitter in (("detected", 0), ("labeled", 500)):
        sub = np.random.default_rng(seed)  # the same people and cameras in both layouts

        def make(
            folder: str, pid: int, cam: int, frame: int, j: int, person: int, layout=layout, jitter=jitter
        ) -> Shot:
            idx = frame + jitter
            return Shot(f"{layout}/{folder}/{pid:04d}_c{cam}_{idx}.png", person, 1, 1, cam, idx)

        shots += _people(sub, 2, 2, 3, make, False, 1, 1) + _people(sub, 2, 2, 3, make, True, 1 + TRAIN_IDS, 1)
    return shots, {}
