"""MSMT17_V1 in miniature: train/ and test/ pid folders and the four list files."""

from __future__ import annotations

import numpy as np

from atustc.synth.layouts._tree import Shot, cameras

TRAIN_IDS, TEST_IDS = 8, 6
_DAYS = ("0113", "0302")
_TIMES = ("morning", "noon", "afternoon")


def msmt17(rng: np.random.Generator) -> tuple[list[Shot], dict[str, str]]:
    """8 train people (about 1 image in 5 in list_val) and 6 test people; test pids restart at 0, as released."""
    shots: list[Shot] = []
    lists: dict[str, list[str]] = {
        k: [] for k in ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
    }
    for test, n in ((False, TRAIN_IDS), (True, TEST_IDS)):
        for pid in range(n):
            k = 0
            for cam in cameras(rng, 2):
                day, tod = _DAYS[int(rng.integers(0, 2))], _TIMES[int(rng.integers(0, 3))]
                for j in range(3):
                    frame = int(rng.integers(1, 9999))
                    name = f"{pid:04d}/{pid:04d}_{k:03d}_{cam:02d}_{day}{tod}_{frame:04d}_{j}.jpg"
                    k += 1
                    if test:
                        lst = "list_query.txt" if j == 0 else "list_gallery.txt"
                    else:
                        lst = "list_val.txt" if rng.random() < 0.2 else "list_train.txt"
                    lists[lst].append(f"{name} {pid}\n")
                    person = pid + (100 if test else 1)
                    shots.append(Shot(f"{'test' if test else 'train'}/{name}", person, int(day), 1, cam, frame))
    return shots, {k: "".join(v) for k, v in lists.items()}
