"""Which queries a scenario admits (its modality rule), the eval table's valid column and footnote."""

import json

import numpy as np
import pandas as pd
import pytest

from atustc.evaluate import evaluate, print_result
from atustc.protocol import load_protocol
from atustc.querycounts import QueryCounts, add_counts, modality_blocks, query_counts
from atustc.table import COLUMNS, validate_table
from ranking_reference import exact_features, make_table

# (pid, clothes, camera, flag): cameras 1-8 RGB, 9-16 IR
HAND = [
    (1, 1, 1, 2),
    (1, 1, 9, 4),
    (2, 1, 10, 4),  # ST queries: one RGB, two IR
    (1, 1, 2, 6),
    (2, 1, 11, 8),  # ST gallery: one RGB, one IR
    (1, 1, 3, 3),  # LT query: RGB
    (1, 2, 4, 7),  # LT gallery: RGB only
]


def hand_table():
    df = pd.DataFrame(HAND, columns=["pid", "clothes", "camera", "flag"])
    df["dataset"] = "atustc"
    df["relpath"] = [f"p{p:03d}-d01-c{c:02d}/cam{k:02d}-f{f}-{i:04d}.jpg" for i, (p, c, k, f) in enumerate(HAND)]
    df["modality"] = np.where(df["camera"] <= 8, "rgb", "ir")
    df["date"], df["frame"], df["split"] = 1, range(len(df)), "test"
    return validate_table(df[list(COLUMNS)])


def test_counts_by_hand():
    c = query_counts(load_protocol("atustc"), hand_table())
    assert c["DT-ST"] == QueryCounts(3, 1, {"IR": 2})
    assert c["NT-ST"] == QueryCounts(3, 2, {"RGB": 1})
    assert c["AD-ST"] == QueryCounts(3, 3, {})  # RGB meets the IR gallery, IR the RGB one
    assert c["DT-LT"] == QueryCounts(1, 1, {})
    assert c["NT-LT"] == QueryCounts(1, 0, {"RGB": 1})
    assert c["AD-LT"] == QueryCounts(1, 0, {"RGB": 1})  # no IR gallery image to meet
    assert c["Any-Time"] == QueryCounts(12, 7, {"IR": 2, "RGB": 3})


def test_mixed_protocol_admits_every_query():
    # the mixed protocol's modality rule has scope same_pid: it never splits the ranking
    c = query_counts(load_protocol("atustc-mixed"), hand_table())
    assert all(v.admitted == v.queries for v in c.values())


def test_blocks_match_the_ranking():
    scenario = {s.name: s for s in load_protocol("atustc").scenarios}["AD-ST"]
    blocks = modality_blocks(scenario, np.array([0, 1, 1]), np.array([0, 1]))
    assert [(q.tolist(), g.tolist()) for q, g in blocks] == [([0], [1]), ([1, 2], [0])]


@pytest.fixture()
def scored():
    table = make_table(11, n_pid=5)
    protocol = load_protocol("atustc")
    return protocol, table, evaluate(protocol, table, exact_features(11, table))


def test_valid_column_uses_the_admitted_queries_and_a_footnote_says_why(scored, capsys):
    from rich.console import Console

    protocol, table, result = scored
    counts = query_counts(protocol, table)
    for name, row in result.scenarios.items():
        assert counts[name].queries == row.queries  # the pool the evaluation ranked
        assert row.valid_queries <= counts[name].admitted
    console = Console(width=200, record=True)
    print_result(result, console, counts=counts)
    text = console.export_text()
    dt = result.scenarios["DT-ST"]
    ir = counts["DT-ST"].outside["IR"]
    assert ir > 0 and counts["DT-ST"].admitted == dt.queries - ir
    line = next(x for x in text.splitlines() if "\u2502 DT-ST " in x)
    assert f"{dt.valid_queries}/{counts['DT-ST'].admitted}" in line and f"/{dt.queries} " not in line
    assert (
        f"DT-ST: {dt.queries} in the pool; {ir} IR with no gallery under the modality rule; "
        f"{counts['DT-ST'].admitted - dt.valid_queries} with no positive after junk removal"
    ) in text
    any_time = result.summary["Any-Time"]
    assert f"{any_time.valid_queries}/{counts['Any-Time'].admitted}" in text
    assert f"Any-Time: {any_time.queries} in its scenarios' pools; " in text


def test_json_keeps_its_fields_and_adds_the_counts(scored):
    protocol, table, result = scored
    counts = query_counts(protocol, table)
    plain = result.to_dict()
    record = add_counts(json.loads(json.dumps(plain)), counts)
    for group in ("scenarios", "summary"):
        for name, row in record[group].items():
            assert {k: v for k, v in row.items() if k not in ("admitted_queries", "outside_modality")} == plain[group][
                name
            ]
            assert row["admitted_queries"] == counts[name].admitted
            assert row["outside_modality"] == counts[name].outside
