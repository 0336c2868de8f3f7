"""Dataset statistics: the numbers and figures of the AT-ReID paper's Fig. 2 for any indexed table.

- :func:`table_stats`: per-group statistics of one table (pure, vectorised).
- :func:`load_published`: the published figures of the comparison datasets (package CSV).
- :func:`build_panels`: the panel frames, computed tables beside the published datasets.
- :mod:`atustc.stats.plots`: the panels drawn with matplotlib (imported only when plotting).
- :func:`build_report` / :func:`write_report`: what ``atustc stats`` computes and writes.
"""

from atustc.stats.compute import TableStats, table_stats
from atustc.stats.panels import Panels, build_panels
from atustc.stats.published import load_published, match_published
from atustc.stats.report import StatsReport, build_report, format_summary, write_report

__all__ = [
    "Panels",
    "StatsReport",
    "TableStats",
    "build_panels",
    "build_report",
    "format_summary",
    "load_published",
    "match_published",
    "table_stats",
    "write_report",
]
