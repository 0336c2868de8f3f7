"""The dataset registry, the published-count check, and a made-up dataset end to end (the guide's example)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atustc.cli import main
from atustc.datasets import DatasetSpec, Scan, get_dataset, index_dataset, list_datasets, published_check
from atustc.datasets._registry import register_dataset, unregister_dataset
from atustc.errors import AtustcError


def test_atustc_is_registered_through_the_api():
    spec = get_dataset("atustc")
    assert (spec.protocol, spec.scored, spec.validation, spec.resplit) == ("atustc", ("atustc-mixed",), "flags", True)
    assert spec.protocols == ("atustc", "atustc-mixed")
    assert spec.published["query+gallery+test"] == {"identities": 135, "images": 117_512}
    assert "atustc" in list_datasets()


def test_duplicate_and_bad_specs_raise():
    spec = get_dataset("atustc")
    with pytest.raises(AtustcError, match="dataset 'atustc' is already registered"):
        register_dataset(spec)
    with pytest.raises(AtustcError, match="validation must be 'flags' or 'fraction'"):
        DatasetSpec("x", "1", "", spec.scan, "atustc", validation="both")  # type: ignore[arg-type]
    with pytest.raises(AtustcError, match=r"published\['train'\]: unknown count 'ids'"):
        DatasetSpec("x", "1", "", spec.scan, "atustc", published={"train": {"ids": 3}})
    with pytest.raises(AtustcError, match="unknown dataset format 'market'"):
        get_dataset("market")


def test_published_check_counts_splits_and_unions():
    t = pd.DataFrame({"pid": [1, 1, 2, 3, 3], "split": ["train", "val", "query", "gallery", "gallery"]})
    published = {"train+val": {"identities": 1, "images": 2}, "query": {"images": 1},
                 "query+gallery": {"identities": 3, "images": 3}}
    assert published_check(t, published) == [
        {"split": "query+gallery", "count": "identities", "published": 3, "indexed": 2, "difference": -1},
    ]
    assert published_check(t, {}) == []
