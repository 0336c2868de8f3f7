"""CUHK03-NP (Li et al., CVPR 2014; new protocol of Zhong et al., CVPR 2017): 767 train / 700 test identities.

Released layout ``cuhk03-np/{detected,labeled}/`` with Market-style folders; ROOT is one of
the two (the layout is the folder name, recorded by where ROOT points)::

    detected/bounding_box_train/0001_c1_1.png     -> split train
    detected/query/0003_c2_31.png                 -> split query
    detected/bounding_box_test/0003_c1_25.png     -> split gallery

A name is ``<pid>_c<camera>_<index>.png`` with the two cameras of a camera pair (1, 2), as
torchreid, FastReID and kw66/AT-ReID ``dataset/cuhk.py`` read it; ``frame`` is the index.
"""

from __future__ import annotations

from pathlib import Path

from atustc.datasets import market1501
from atustc.datasets._registry import DatasetSpec, Scan, register_dataset
from atustc.datasets._reid_layout import parse_names
from atustc.errors import AtustcError

PATTERN = r"(\d+)_c(\d+)_(\d+)\.png"
NAME_HELP = "<pid>_c<camera>_<index>.png (e.g. 0465_c1_4527.png)"
LAYOUTS: tuple[str, ...] = ("detected", "labeled")
#: published counts per layout (Zhong et al., CVPR 2017, CUHK03-NP README).
PUBLISHED_BY_LAYOUT: dict[str, dict[str, dict[str, int]]] = {
    "detected": {
        "train": {"identities": 767, "images": 7365},
        "query": {"identities": 700, "images": 1400},
        "gallery": {"identities": 700, "images": 5332},
    },
    "labeled": {
        "train": {"identities": 767, "images": 7368},
        "query": {"identities": 700, "images": 1400},
        "gallery": {"identities": 700, "images": 5328},
    },
}


def scan(root: Path) -> Scan:
    """Index ``cuhk03-np/detected`` or ``cuhk03-np/labeled`` (see the module docstring).

    Raises:
        AtustcError: ROOT is the ``cuhk03-np`` folder above the layouts, or it holds Market-1501
            names instead of CUHK03-NP ones.
    """
    inside = [lay for lay in LAYOUTS if (root / lay / "bounding_box_train").is_dir()]
    if inside and not (root / "bounding_box_train").exists():
        raise AtustcError(f"{root}: holds the CUHK03-NP layouts {', '.join(inside)}; point ROOT at {root / inside[0]}")
    result = market1501.scan_bbox_folders(root, "cuhk03", "CUHK03-NP", PATTERN, NAME_HELP, (1, 2), 2)
    if result.files_seen and not len(result.columns["relpath"]):
        names = [r["path"].rsplit("/", 1)[-1] for r in result.rejected]
        ok, _ = parse_names(names, market1501.PATTERN)
        if ok.mean() > 0.5:
            raise AtustcError(
                f"{root}: file names are Market-1501's ({names[int(ok.argmax())]}), not CUHK03-NP's; "
                "use --format market1501"
            )
    return result


SPEC = register_dataset(
    DatasetSpec(
        scan=scan,
        name="cuhk03",
        version="1",
        description="CUHK03-NP (Zhong et al., CVPR 2017): detected or labeled, 767/700 identities, Market-style folders",
        protocol="cuhk03",
        task="tr",
        validation="fraction",
        published=PUBLISHED_BY_LAYOUT["detected"],
        layouts=LAYOUTS,
    )
)
