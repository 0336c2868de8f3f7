"""SYSU-MM01 (Wu et al., "RGB-Infrared Cross-Modality Person Re-Identification", ICCV 2017).

Released layout (ROOT is ``SYSU-MM01/``)::

    cam1/ ... cam6/<pid:04d>/<frame:04d>.jpg   RGB cameras 1, 2 (indoor), 4, 5 (outdoor); IR cameras 3 (indoor), 6
    exp/train_id.txt, exp/val_id.txt, exp/test_id.txt     comma-separated identity numbers on one line
    exp/rand_perm_cam.mat                                  (some releases) the official gallery draws

Splits: train and val identities -> ``train`` / ``val`` (the published training set is both, as
mangye16/Cross-Modal-Re-ID-baseline ``pre_process_sysu.py`` and kw66/AT-ReID use it); test
identities: IR images -> ``query``, RGB images -> ``gallery`` (the gallery pool that the
protocol's trials draw from). Cameras keep their numbers; cameras 3 and 6 are ``ir``.
``frame`` is the file number. Images of an identity in no list are rejected (``not_listed``); a
listed identity without any image is an error naming the list.

:func:`rand_perm_galleries` turns the official ``rand_perm_cam.mat`` (Wu et al.'s evaluation
code) into the galleries of a protocol's trials (``atustc eval --galleries``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import make_scan, reject, require
from atustc.datasets._vi_layout import check_ids, frame_numbers, read_ids, walk_pid_folders
from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd

    from atustc.protocol import Protocol

CAMERAS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
IR_CAMERAS: tuple[int, ...] = (3, 6)
LISTS: tuple[tuple[str, str], ...] = (
    ("train", "exp/train_id.txt"),
    ("val", "exp/val_id.txt"),
    ("test", "exp/test_id.txt"),
)


def scan(root: Path) -> Scan:
    """Index a SYSU-MM01 root (see the module docstring).

    Raises:
        AtustcError: not a SYSU-MM01 root, a missing or malformed id list, an identity in two
            lists, or a listed identity without images.
    """
    require(root, "sysu-mm01", [*(f"cam{c}" for c in CAMERAS), "exp"], "SYSU-MM01")
    ids = {part: read_ids(root / path) for part, path in LISTS}
    owner: dict[int, str] = {}
    for part, path in LISTS:
        for i in ids[part]:
            if i in owner and owner[i] != part:
                raise AtustcError(f"{root / path}: identity {i} is also in exp/{owner[i]}_id.txt")
            owner[i] = part
    rejected: list[dict[str, str]] = []
    tree = walk_pid_folders(root, [f"cam{c}" for c in CAMERAS], rejected)
    for part, path in LISTS:
        check_ids(root / path, ids[part], set(tree.pid), "cam1-cam6")
    relpath = np.array(tree.relpath, dtype=object)
    pid = np.array(tree.pid, dtype=np.int64)
    camera = np.array([int(f[3:]) for f in tree.folder], dtype=np.int64)
    ir = np.isin(camera, IR_CAMERAS)
    part = np.array([owner.get(int(p), "") for p in pid], dtype=object)
    split = np.where(part == "test", np.where(ir, "query", "gallery"), part).astype(object)
    ok = part != ""
    rejected += [
        reject(str(relpath[i]), "not_listed", f"identity {pid[i]} is in none of exp/train_id, val_id, test_id.txt")
        for i in np.flatnonzero(~ok)
    ]
    cols = {
        "relpath": relpath,
        "pid": pid,
        "camera": camera,
        "modality": np.where(ir, "ir", "rgb").astype(object),
        "frame": frame_numbers(tree.relpath),
        "split": split,
    }
    return make_scan("sysu-mm01", ok, cols, rejected, len(tree.relpath) + len(rejected))


def rand_perm_galleries(path: Path, protocol: Protocol, table: pd.DataFrame) -> dict[str, list[np.ndarray]]:
    """The galleries of every sampled scenario of ``protocol`` from the official ``rand_perm_cam.mat``.

    The file holds, per camera and identity, one permutation of the identity's image numbers per
    trial (``rand_perm_cam{cam}{pid}(trial, :)``); trial ``t`` keeps the first ``shots`` of them,
    i.e. ``cam<c>/<pid:04d>/<n:04d>.jpg`` (as Wu et al.'s evaluation code and its Python ports
    read it). Every (pid, camera) of a scenario's gallery pool takes its images from there.

    Raises:
        AtustcError: an unreadable file, fewer trials in the file than the protocol runs, or a
            drawn image that is not a row of the table.
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    from atustc.evaluate import scenario_rows

    try:
        perm = loadmat(str(path))["rand_perm_cam"]
    except (OSError, ValueError, KeyError, NotImplementedError, MatReadError) as exc:
        raise AtustcError(f"{path}: not a SYSU-MM01 rand_perm_cam.mat file ({exc})") from None
    index = {r: i for i, r in enumerate(table["relpath"].astype(str))}
    out: dict[str, list[np.ndarray]] = {}
    for scenario in protocol.scenarios:
        s = scenario.sampling
        if s is None:
            continue
        if scenario.directions != "forward":
            raise AtustcError(f"{path}: scenario {scenario.name} ranks both directions; the file draws galleries only")
        _, g = scenario_rows(protocol, scenario, table)
        groups = table.iloc[g][["pid", "camera"]].drop_duplicates().to_numpy()
        runs = []
        for t in range(s.trials):
            rows = []
            for pid, cam in groups:
                try:
                    draws = np.atleast_2d(np.asarray(perm[cam - 1][0]).squeeze()[pid - 1])
                    numbers = draws[t][: s.shots]
                except IndexError:
                    raise AtustcError(
                        f"{path}: no permutation for camera {cam}, identity {pid}, trial {t + 1}"
                    ) from None
                for n in numbers:
                    rel = f"cam{cam}/{int(pid):04d}/{int(n):04d}.jpg"
                    if rel not in index:
                        raise AtustcError(f"{path}: trial {t + 1} draws {rel}, which is not in the table")
                    rows.append(index[rel])
            runs.append(np.sort(np.array(rows, dtype=np.int64)))
        out[scenario.name] = runs
    return out


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        task="vi",
        name="sysu-mm01",
        version="1",
        description="SYSU-MM01 (Wu et al., ICCV 2017): cam1-cam6/<pid>/<n>.jpg and exp/{train,val,test}_id.txt",
        protocol="sysu-mm01",
        variants=("indoor", "multi-shot", "indoor-multi-shot", "all-settings"),
        validation="release",  # exp/val_id.txt
        # Wu et al. 2017; Ye et al., AGW (TPAMI 2021): 395 training identities (22,258 RGB +
        # 11,909 IR images), 96 test identities with 3,803 IR queries and 6,775 RGB gallery images.
        published={
            "train+val": {"identities": 395, "images": 34167},
            "query": {"identities": 96, "images": 3803},
            "gallery": {"identities": 96, "images": 6775},
        },
    )
)
