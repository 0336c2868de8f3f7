"""`atustc stats`: every Fig. 2 figure on hand-built tables with known answers, the published
CSV, the panel merge, the files written (CSV/JSON/PNG/SVG) and the CLI."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from atustc.cli import main
from atustc.errors import AtustcError
from atustc.stats import build_panels, build_report, load_published, match_published, table_stats, write_report
from atustc.stats.compute import effective_split
from atustc.stats.published import COLUMNS
from atustc.table import save_table

SC = ["DT-ST", "DT-LT", "NT-ST", "NT-LT", "AD-ST", "AD-LT"]


def make_table(rows, dataset="toy"):
    """rows: (pid, clothes, camera, date, split[, flag]) -> an annotation table (cams >= 9 are IR)."""
    recs = []
    for i, r in enumerate(rows):
        pid, clothes, cam, date, split = r[:5]
        flag = r[5] if len(r) > 5 else -1
        recs.append(
            {
                "dataset": dataset,
                "relpath": f"img{i:03d}.jpg",
                "pid": pid,
                "clothes": clothes,
                "camera": cam,
                "modality": "ir" if cam >= 9 else "rgb",
                "date": date,
                "frame": i,
                "flag": flag,
                "split": split,
            }
        )
    return pd.DataFrame(recs)


# Three people. p1: RGB cams 1, 2 in outfit 1 on date 1 (cam 1 twice), IR cam 9 and RGB cam 1 in
# outfit 2 on date 2. p2: RGB cam 3 in outfits 1 (date 1) and 2 (date 3), IR cams 10 (date 1) and
# 11 (date 3) in outfit 1. p3 (test): IR cam 12 twice (one query, one gallery), IR cam 13 (gallery).
TOY = [
    (1, 1, 1, 1, "train"),
    (1, 1, 1, 1, "train"),
    (1, 1, 2, 1, "train"),
    (1, 2, 9, 2, "train"),
    (1, 2, 1, 2, "train"),
    (2, 1, 3, 1, "train"),
    (2, 2, 3, 3, "train"),
    (2, 1, 10, 1, "train"),
    (2, 1, 11, 3, "train"),
    (3, 1, 12, 2, "query"),
    (3, 1, 12, 2, "gallery"),
    (3, 1, 13, 2, "gallery"),
]


@pytest.fixture(scope="module")
def toy():
    return table_stats(make_table(TOY))


def row(df, **match):
    sel = df
    for k, v in match.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, match
    return sel.iloc[0]


def test_all_group_figures(toy):
    s = row(toy.summary, group="all")
    assert (s["images"], s["rgb_images"], s["ir_images"], s["identities"]) == (12, 6, 6, 3)
    assert (s["outfits"], s["cameras"], s["rgb_cameras"], s["ir_cameras"], s["dates"]) == (5, 8, 3, 5, 3)
    assert s["outfits_per_id"] == pytest.approx(5 / 3)
    assert s["rgb_cameras_per_id"] == pytest.approx(1.0)
    assert s["ir_cameras_per_id"] == pytest.approx(5 / 3)
    assert s["cameras_per_id"] == pytest.approx(8 / 3)
    assert s["captures_per_id"] == pytest.approx(10 / 3)
    assert s["dates_per_id"] == pytest.approx(5 / 3)
    assert s["images_per_id"] == pytest.approx(4.0)
    assert s["scenarios"] == "DT-ST DT-LT NT-ST AD-ST AD-LT"


def test_per_identity_distributions(toy):
    ids = toy.identities[toy.identities["group"] == "all"].set_index("pid")
    cols = ["images", "outfits", "rgb_cameras", "ir_cameras", "cameras", "captures", "dates"]
    assert ids.loc[1, cols].tolist() == [5, 2, 2, 1, 3, 4, 2]
    assert ids.loc[2, cols].tolist() == [4, 2, 1, 2, 3, 4, 2]
    assert ids.loc[3, cols].tolist() == [3, 1, 0, 2, 2, 2, 1]
    # the means in the summary are the means of these distributions, in every group
    for group, part in toy.identities.groupby("group", observed=True):
        s = row(toy.summary, group=group)
        for c in cols:
            assert s[f"{c}_per_id"] == pytest.approx(part[c].mean())


def test_groups_per_split(toy):
    assert toy.summary["group"].tolist() == ["all", "train", "test", "query", "gallery"]
    train = row(toy.summary, group="train")
    assert (train["images"], train["identities"], train["cameras"]) == (9, 2, 6)
    assert train["captures_per_id"] == pytest.approx(4.0)
    test = row(toy.summary, group="test")
    assert (test["images"], test["identities"], test["rgb_cameras"], test["ir_cameras"]) == (3, 1, 0, 2)
    assert (test["rgb_cameras_per_id"], test["ir_cameras_per_id"], test["captures_per_id"]) == (0, 2, 2)
    assert row(toy.summary, group="gallery")["images"] == 2


def test_coverage_within_group_by_hand(toy):
    cov = toy.coverage[toy.coverage["group"] == "all"].set_index("scenario")
    assert cov.loc[SC, "valid_queries"].tolist() == [3, 2, 5, 0, 5, 7]
    assert cov.loc[SC, "queries"].tolist() == [6, 6, 6, 6, 12, 12]
    assert cov.loc[SC, "covered"].tolist() == [True, True, True, False, True, True]
    train = toy.coverage[toy.coverage["group"] == "train"].set_index("scenario")
    assert train.loc[SC, "valid_queries"].tolist() == [3, 2, 2, 0, 5, 7]


def test_coverage_test_group_is_query_against_gallery(toy):
    test = toy.coverage[toy.coverage["group"] == "test"].set_index("scenario")
    # one IR query (cam 12): its only other-camera positive is the cam 13 gallery image
    assert test.loc[SC, "valid_queries"].tolist() == [0, 0, 1, 0, 0, 0]
    assert test.loc[SC, "queries"].tolist() == [0, 0, 1, 1, 1, 1]
    assert row(toy.coverage, group="query", scenario="NT-ST")["valid_queries"] == 0  # alone in its group
    assert row(toy.coverage, group="gallery", scenario="NT-ST")["valid_queries"] == 2


# AT-USTC flags (split 'unused', the split comes from the flag): pid 4 train/val, pid 5 test.
FLAGGED = [
    (4, 1, 1, 1, "unused", 0),
    (4, 1, 2, 1, "unused", 1),
    (5, 1, 1, 1, "unused", 2),  # DT-ST query (RGB)
    (5, 1, 2, 1, "unused", 6),  # ST gallery RGB: positive of the flag-2 and flag-4 queries
    (5, 1, 1, 1, "unused", 6),  # ST gallery RGB, same camera as the flag-2 query
    (5, 1, 9, 1, "unused", 8),  # ST gallery IR
    (5, 1, 10, 1, "unused", 4),  # NT-ST query (IR)
    (5, 2, 1, 2, "unused", 3),  # DT-LT query (RGB, outfit 2)
    (5, 1, 2, 1, "unused", 7),  # LT gallery RGB, outfit 1
    (5, 1, 3, 1, "unused", 10),  # test image outside the pools
]


def test_official_pools_for_atustc_flags():
    s = table_stats(make_table(FLAGGED, dataset="atustc"))
    test = s.coverage[s.coverage["group"] == "test"].set_index("scenario")
    assert test.loc[SC, "valid_queries"].tolist() == [1, 1, 1, 0, 2, 0]
    assert test.loc[SC, "queries"].tolist() == [1, 1, 1, 0, 2, 1]
    assert s.summary["group"].tolist() == [
        "all",
        "train",
        "val",
        "test",
        "query",
        "gallery",
        "query-ST-rgb",
        "query-LT-rgb",
        "query-ST-ir",
        "gallery-ST-rgb",
        "gallery-LT-rgb",
        "gallery-ST-ir",
    ]
    assert row(s.summary, group="test")["images"] == 8
    assert row(s.summary, group="query")["images"] == 3
    assert row(s.summary, group="gallery-ST-rgb")["images"] == 2


def test_effective_split_prefers_split_column_then_flag():
    t = make_table(
        [
            (1, 1, 1, 1, "train", 5),
            (1, 1, 2, 1, "unused", 5),
            (1, 1, 3, 1, "unused", -1),
            (1, 1, 4, 1, "unused", 10),
            (1, 1, 5, 1, "unused", 1),
        ]
    )
    assert effective_split(t).tolist() == ["train", "query", "unused", "test", "val"]


def test_unknown_clothes_and_dates():
    # clothes -1 is one (unknown) outfit, so its pairs are short-term; date -1 is one date
    t = make_table([(7, -1, 1, -1, "train"), (7, -1, 2, -1, "train"), (7, -1, 2, -1, "train")])
    s = table_stats(t)
    a = row(s.summary, group="all")
    assert (a["outfits_per_id"], a["captures_per_id"], a["dates_per_id"]) == (1, 2, 1)
    assert a["scenarios"] == "DT-ST"


def test_empty_table_and_unknown_split_are_errors():
    with pytest.raises(AtustcError, match="no rows"):
        table_stats(make_table(TOY).iloc[:0])
    with pytest.raises(AtustcError, match="column 'split' must be one of .* got 'probe'"):
        table_stats(make_table([(1, 1, 1, 1, "probe")]))


@pytest.mark.parametrize("module", ["compute", "published", "report"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"atustc.stats.{module}"))
    assert result.failed == 0 and result.attempted > 0


def test_published_csv_parses_with_documented_columns():
    pub = load_published()
    assert tuple(pub.columns) == COLUMNS
    assert pub["dataset"].tolist() == [
        "Market1501",
        "CUHK03",
        "MSMT17",
        "RegDB",
        "SYSU-MM01",
        "LLCM",
        "PRCC",
        "LTCC",
        "DeepChange",
        "AT-USTC",
    ]
    p = pub.set_index("dataset")
    assert p.loc["Market1501", ["images", "identities", "rgb_cameras"]].tolist() == [32668, 1501, 6]
    assert p.loc["MSMT17", ["images", "identities", "rgb_cameras"]].tolist() == [126441, 4101, 15]
    assert p.loc["RegDB", ["images", "identities", "rgb_cameras", "ir_cameras"]].tolist() == [8240, 412, 1, 1]
    assert p.loc["SYSU-MM01", ["identities", "rgb_cameras", "ir_cameras"]].tolist() == [491, 4, 2]
    assert p.loc["LLCM", ["identities", "rgb_cameras", "ir_cameras"]].tolist() == [1064, 9, 9]
    assert p.loc["PRCC", ["identities", "rgb_cameras"]].tolist() == [221, 3]
    assert p.loc["LTCC", ["identities", "rgb_cameras"]].tolist() == [152, 12]
    assert p.loc["DeepChange", ["identities", "rgb_cameras"]].tolist() == [1121, 17]
    at = p.loc["AT-USTC"]
    assert (at["captures_per_id"], at["rgb_cameras_per_id"], at["ir_cameras_per_id"]) == (29.1, 5.7, 5.3)
    assert at["scenarios"].split() == SC
    # captures per identity are published for AT-USTC only: the others stay empty, never estimated
    assert p["captures_per_id"].isna().sum() == 9
    sources = {
        "images": "images_source",
        "identities": "identities_source",
        "rgb_cameras": "cameras_source",
        "rgb_cameras_per_id": "cameras_per_id_source",
        "captures_per_id": "captures_per_id_source",
    }
    for fig, src in sources.items():
        assert (p.loc[p[fig].notna(), src] != "").all(), fig
    assert (p["notes"] != "").all() and (p["scenarios_source"] != "").all()
    assert set(p["family"]) == {"Tr-ReID", "CM-ReID", "CC-ReID", "AT-ReID"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("market-1501", "Market1501"),
        ("SYSU_MM01", "SYSU-MM01"),
        ("atustc", "AT-USTC"),
        ("AT-USTC", "AT-USTC"),
        ("deepchange", "DeepChange"),
        ("toy", None),
    ],
)
def test_match_published(name, expected):
    assert match_published(name, load_published()) == expected


def test_computed_table_is_drawn_beside_the_published_figures(toy):
    market = table_stats(make_table(TOY, dataset="market1501"))
    panels = build_panels([market, toy], load_published())
    scale = panels.scale
    assert scale["dataset"].tolist()[:4] == ["Market1501", "market1501", "CUHK03", "MSMT17"]
    assert scale["dataset"].tolist()[-1] == "toy"
    assert scale["source"].tolist()[:2] == ["published", "computed"]
    assert row(scale, dataset="Market1501")[["images", "identities"]].tolist() == [32668, 1501]  # kept
    m = row(scale, dataset="market1501")
    assert (m["source"], m["family"], m["images"], m["identities"]) == ("computed", "Tr-ReID", 12, 3)
    assert row(scale, dataset="toy")["family"] == ""
    assert row(scale, dataset="RegDB")["source"] == "published"
    cam = row(panels.cameras, dataset="market1501")
    assert (cam["rgb_cameras_per_id"], cam["ir_cameras_per_id"]) == pytest.approx((1.0, 5 / 3))
    cov = panels.coverage[(panels.coverage["dataset"] == "market1501") & (panels.coverage["group"] == "all")]
    assert cov.set_index("scenario").loc[SC, "covered"].tolist() == [True, True, True, False, True, True]
    cap = row(panels.captures, dataset="toy")
    assert (cap["captures_per_id"], cap["median"], cap["min"], cap["max"], cap["identities"]) == (
        pytest.approx(10 / 3),
        4,
        2,
        4,
        3,
    )
    assert row(panels.captures, dataset="AT-USTC")["captures_per_id"] == 29.1
    dist = panels.distribution[panels.distribution["dataset"] == "toy"].set_index("pid")
    assert dist.loc[[1, 2, 3], ["captures", "rgb_cameras", "ir_cameras", "outfits", "dates"]].values.tolist() == [
        [4, 2, 1, 2, 2],
        [4, 1, 2, 2, 2],
        [2, 0, 2, 1, 1],
    ]
    od = panels.outfits_dates
    assert od["dataset"].tolist() == ["market1501", "toy"]  # computed tables only
    t = row(od, dataset="toy")
    assert (t["outfits_per_id"], t["dates_per_id"], t["outfits"], t["dates"]) == (
        pytest.approx(5 / 3),
        pytest.approx(5 / 3),
        5,
        3,
    )


def test_a_label_equal_to_a_published_name_stays_distinct(toy):
    at = table_stats(make_table(TOY, dataset="atustc"), label="AT-USTC")
    names = build_panels([at], load_published()).scale["dataset"].tolist()
    assert names[-2:] == ["AT-USTC", "AT-USTC (computed)"]


def test_duplicate_and_explicit_labels():
    t = make_table(TOY)
    rep = build_report({"a/train.parquet": t, "b/test.parquet": t}, published=False)
    assert [x["dataset"] for x in rep.tables] == ["toy (train)", "toy (test)"]
    rep = build_report({"a/t.parquet": t, "b/t.parquet": t}, published=False)
    assert [x["dataset"] for x in rep.tables] == ["toy (t)", "toy (t) #2"]
    rep = build_report({"a/train.parquet": make_table(TOY, "atustc"), "b/test.parquet": make_table(TOY, "atustc")})
    assert rep.panels.scale["dataset"].tolist()[-3:] == ["AT-USTC", "atustc (train)", "atustc (test)"]
    assert rep.panels.scale["source"].tolist()[-3:] == ["published", "computed", "computed"]
    rep = build_report({"x.parquet": t}, published=False, labels=["mine"])
    assert rep.summary["dataset"].unique().tolist() == ["mine"]
    with pytest.raises(AtustcError, match="label"):
        build_report({"x.parquet": t}, labels=["a", "b"])


@pytest.fixture(scope="module")
def report():
    return build_report({"toy.parquet": make_table(TOY), "flags.parquet": make_table(FLAGGED, dataset="atustc")})


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    out = tmp_path_factory.mktemp("stats")
    return report, out, write_report(report, out, combined=True)


def test_csv_and_json_agree_with_frames(written):
    rep, out, _ = written
    frames = {
        "summary": rep.summary,
        "identities": rep.identities,
        "coverage": rep.panels.coverage,
        "cameras": rep.panels.cameras,
        "captures": rep.panels.captures,
        "scale": rep.panels.scale,
        "outfits_dates": rep.panels.outfits_dates,
    }
    js = json.loads((out / "stats.json").read_text())
    assert [t["dataset"] for t in js["tables"]] == ["toy", "atustc"]
    for name, df in frames.items():
        back = pd.read_csv(out / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert list(back.columns) == list(df.columns), name
        assert len(back) == len(df) == len(js[name]), name
        for col in df.columns:
            a = df[col].astype(object).where(df[col].notna(), None).tolist()
            for x, y, z in zip(a, back[col].tolist(), (r[col] for r in js[name])):
                if x is None:
                    assert z is None and (y is None or (isinstance(y, float) and math.isnan(y))), (name, col)
                elif isinstance(x, (float, np.floating, int, np.integer)) and not isinstance(x, (bool, np.bool_)):
                    assert float(y) == pytest.approx(float(x), rel=1e-12) and z == pytest.approx(float(x)), (name, col)
                else:  # an empty string reads back from CSV as NaN
                    y = "" if isinstance(y, float) and math.isnan(y) else y
                    assert str(y) == str(x) and str(z) == str(x), (name, col)


def test_figures_written_and_non_trivial(written):
    _, out, files = written
    names = {p.name for p in files}
    for stem in ("fig2a_coverage", "fig2b_cameras", "fig2c_captures", "fig2d_scale", "fig2e_outfits_dates", "fig2"):
        png, svg = out / f"{stem}.png", out / f"{stem}.svg"
        assert png.name in names and svg.name in names
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 15_000
        text = svg.read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text and svg.stat().st_size > 10_000
    # labels are real text in the SVG; the computed atustc is starred and the published AT-USTC kept
    scale_svg = (out / "fig2d_scale.svg").read_text()
    assert ">atustc*</text>" in scale_svg and ">AT-USTC</text>" in scale_svg
    assert "DT-ST" in (out / "fig2a_coverage.svg").read_text()
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_plot_functions_draw_on_a_given_axes(report):
    from matplotlib.figure import Figure

    from atustc.stats import plots

    rep = report
    fig = Figure()
    axes = fig.subplots(2, 2)
    assert plots.plot_coverage(rep.panels.coverage, ax=axes[0, 0]) is fig
    assert plots.plot_scale(rep.panels.scale, ax=axes[1, 1]) is fig
    assert [t.get_text() for t in axes[0, 0].get_yticklabels()][-1] == "toy*"


def test_svg_is_deterministic(written, tmp_path):
    from atustc.stats import plots

    rep, out, _ = written
    plots.save_figure(plots.plot_scale(rep.panels.scale), tmp_path / "again", formats=("svg",))
    assert (tmp_path / "again.svg").read_bytes() == (out / "fig2d_scale.svg").read_bytes()


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tables") / "toy.parquet"
    save_table(make_table(TOY), path)
    return path


def test_cli_formats(toy_path, capsys):
    main(["stats", str(toy_path), "--format", "csv"])
    back = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert back["group"].tolist() == ["all", "train", "test", "query", "gallery"]
    assert back.loc[0, "captures_per_id"] == pytest.approx(10 / 3)
    main(["stats", str(toy_path), "--format", "json"])
    recs = json.loads(capsys.readouterr().out)
    assert recs[0]["images"] == 12 and recs[0]["scenarios"] == "DT-ST DT-LT NT-ST AD-ST AD-LT"
    main(["stats", str(toy_path), "--format", "md"])
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| dataset | group | images | ids |") and md[1].startswith("|---|---|---:|")
    assert md[2] == "| toy | all | 12 | 3 | 1.67 | 1.00 | 1.67 | 3.33 | 1.67 | DT-ST DT-LT NT-ST AD-ST AD-LT |"
    main(["stats", str(toy_path)])
    screen = capsys.readouterr().out
    assert "toy" in screen and "gallery" in screen and "all but NT-LT" in screen
    assert "scenarios with a" in screen and "valid query" in screen and "DD NN AA" not in screen


def test_cli_writes_outputs(toy_path, tmp_path, capsys):
    main(["stats", str(toy_path), "-o", str(tmp_path / "out"), "--no-plots", "--no-published", "--label", "mine"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cameras.csv",
        "captures.csv",
        "coverage.csv",
        "identities.csv",
        "outfits_dates.csv",
        "scale.csv",
        "stats.json",
        "summary.csv",
    ]
    scale = pd.read_csv(tmp_path / "out" / "scale.csv")
    assert scale["dataset"].tolist() == ["mine"]
    assert "wrote 8 files" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.parquet"], "missing.parquet: table not found"),
        (["{toy}", "--format", "xml"], "--format: unknown format 'xml'; choose one of csv, json, md"),
        (["{toy}", "--label", "a", "--label", "b"], "--label: got 2 name(s) for 1 table(s)"),
    ],
)
def test_cli_errors_are_one_line_exit_2(toy_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["stats", *(a.format(toy=toy_path) for a in args)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_bad_table_and_output_path(tmp_path, toy_path, capsys):
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(SystemExit):
        main(["stats", str(bad)])
    assert "not a readable parquet table" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["stats", str(toy_path), "-o", str(blocker)])
    assert exc.value.code == 2 and "is a file" in capsys.readouterr().err
    with pytest.raises(AtustcError, match="exists and is not a folder"):
        write_report(build_report({"t": make_table(TOY)}), blocker, plots=False)


def test_cli_process_imports_no_model_libraries(toy_path, tmp_path):
    heavy = "('torch', 'timm', 'sklearn', 'matplotlib', 'matplotlib.pyplot')"
    code = (
        "import sys\nfrom atustc.cli import main\n"
        f"main(['stats', {str(toy_path)!r}, '--format', 'csv'])\n"
        f"print(sorted(m for m in {heavy} if m in sys.modules))\n"
        f"main(['stats', {str(toy_path)!r}, '--format', 'csv', '-o', {str(tmp_path)!r}])\n"
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = res.stdout.strip().splitlines()
    assert lines[-1] == "['matplotlib']"  # plotting imports matplotlib's object API only, never pyplot
    assert "[]" in lines[:-1]  # without -o nothing is drawn and matplotlib is not imported


def brute_force_valid(q, g, scenario):
    """Valid query images of a scenario by enumerating every (query, gallery) pair."""
    span, term = scenario.split("-")
    want = {"DT": {("rgb", "rgb")}, "NT": {("ir", "ir")}, "AD": {("rgb", "ir"), ("ir", "rgb")}}[span]
    valid = 0
    for a in q.itertuples():
        if not any(a.modality == m for m, _ in want):
            continue
        for b in g.itertuples():
            if (
                a.pid == b.pid
                and a.camera != b.camera
                and (a.modality, b.modality) in want
                and (a.clothes == b.clothes) == (term == "ST")
            ):
                valid += 1
                break
    return valid


def test_random_table_matches_brute_force():
    rng = np.random.default_rng(3)
    n = 160
    cam = rng.integers(1, 17, n)
    t = pd.DataFrame(
        {
            "dataset": "rand",
            "relpath": [f"r{i}" for i in range(n)],
            "pid": rng.integers(1, 7, n),
            "clothes": rng.choice([-1, 1, 2, 3], n),
            "camera": cam,
            "modality": np.where(cam >= 9, "ir", "rgb"),
            "date": rng.integers(-1, 4, n),
            "frame": 0,
            "flag": -1,
            "split": rng.choice(["train", "query", "gallery"], n),
        }
    )
    s = table_stats(t)
    ids = s.identities[s.identities["group"] == "all"].set_index("pid")
    g = t.groupby("pid")
    assert ids["images"].tolist() == g.size().tolist()
    assert ids["outfits"].tolist() == g["clothes"].nunique().tolist()
    assert ids["cameras"].tolist() == g["camera"].nunique().tolist()
    assert ids["dates"].tolist() == g["date"].nunique().tolist()
    assert ids["captures"].tolist() == [len(set(zip(p.date, p.camera))) for _, p in g]
    assert ids["rgb_cameras"].tolist() == [p.loc[p.modality == "rgb", "camera"].nunique() for _, p in g]
    for group, q, gal in [
        ("all", t, t),
        ("train", t[t.split == "train"], t[t.split == "train"]),
        ("test", t[t.split == "query"], t[t.split == "gallery"]),
    ]:
        for sc in SC:
            assert row(s.coverage, group=group, scenario=sc)["valid_queries"] == brute_force_valid(q, gal, sc), (
                group,
                sc,
            )


def test_camera_bars_start_at_zero_and_show_the_spread(toy):
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    from atustc.stats import plots

    panels = build_panels([toy], load_published())
    fig = plots.plot_cameras(panels.cameras, panels.distribution)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() > 0]
    assert bars and {round(p.get_x(), 9) for p in bars} == {0.0}  # RGB and IR both from zero, means and outlines
    i = panels.cameras["dataset"].tolist().index("toy")
    ir_mean = [p for p in bars if p.get_facecolor()[3] > 0 and abs(p.get_y() + p.get_height() / 2 - (i + 0.19)) < 1e-9]
    assert len(ir_mean) == 1 and ir_mean[0].get_width() == pytest.approx(5 / 3)
    # the spread over identities: IR cameras per identity are 1, 2, 2 -> a min-max line from 1 to 2
    segs = [s for c in ax.collections if isinstance(c, LineCollection) for s in c.get_segments()]
    ir_lines = sorted(
        (round(s[0][0], 6), round(s[1][0], 6))
        for s in segs
        if abs(s[0][1] - (i + 0.19)) < 1e-9 and abs(s[1][1] - (i + 0.19)) < 1e-9
    )
    assert (1.0, 2.0) in ir_lines and (1.5, 2.0) in ir_lines  # min-max and quartiles (1.5 to 2)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-2:] == ["AT-USTC", "toy*"]


def test_captures_panel_draws_only_rows_with_a_value_and_names_the_rest(toy):
    from atustc.stats import plots

    panels = build_panels([table_stats(make_table(TOY, dataset="atustc"))], load_published())
    ax = plots.plot_captures(panels.captures, panels.distribution).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["AT-USTC", "atustc*"]  # published point kept
    notes = " ".join(t.get_text() for t in ax.texts).replace("\n", " ")
    assert "no published figure: Market1501, CUHK03" in notes


def test_outfits_dates_panel_and_combined_layout(toy):
    from atustc.stats import plots

    panels = build_panels([toy], load_published())
    ax = plots.plot_outfits_dates(panels.outfits_dates, panels.distribution).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["toy*"]
    texts = [t.get_text().strip() for t in ax.texts]
    assert "1.67" in texts and "1.67 of 3" in texts  # outfits mean; dates mean of the dataset's 3 dates
    fig = plots.plot_fig2(panels)
    assert [a.get_title() for a in fig.axes] == [
        "(a) Scenario coverage",
        "(b) Cameras per identity",
        "(c) Captures per identity",
        "(e) Outfits and dates per identity",
        "(d) Scale",
    ]
