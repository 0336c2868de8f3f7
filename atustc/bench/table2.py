"""The paper's Table 2 from run folders: MS-ReID against the MoE alternatives (``atustc leaderboard --layout table2``).

Rows are the runs of the methods of :data:`atustc.methods.uniat.TABLE2`, in the paper's order, one
block per preset, data hash and checkpoint rule. Each row shows the number of experts, ``Params ×``
(the run's parameter count over the MS-ReID row's, ``uniat-said``), ``Time ×`` (the mean
optimisation-step cost over MS-ReID's, without the data wait) and the headline aggregate's R1/mAP
(Any-Time for AT-USTC), with the paper's figures beside them. A ratio needs the MS-ReID row of the
same preset, data and checkpoint (else ``-``).

The step cost is the process CPU time per step (``step_cpu_s`` of ``status.json``) when every run
of the block records it: other work on the machine inflates a run's wall clock far more than its
CPU time.
Older runs record only the wall clock (``step_time_s``); a block with such a run uses the wall
clock for all its rows, marked ``(wall)``, comparable only between runs that shared a machine and
its load. So do GPU runs: their host's CPU time says nothing of the device, and the engine records
``step_cpu_s`` for CPU runs only.

CSV columns: ``method``, ``label``, ``experts``, ``preset``, ``data_hash``, ``checkpoint``,
``seeds``, ``n_runs``, ``params``, ``params_ratio``, ``step_time_s``, ``step_cpu_s``, ``time_basis``
(``cpu`` or ``wall``), ``time_ratio``,
``<headline>_R1_mean``/``_std``, ``<headline>_mAP_mean``/``_std`` (fractions), ``paper_params``,
``paper_time``, ``paper_R1``, ``paper_mAP`` (the paper's ratios and percentages).
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from atustc.bench.board_render import Format, latex_escape
from atustc.bench.layout import build_layout
from atustc.bench.leaderboard import DEFAULT_PROTOCOLS, Leaderboard
from atustc.errors import AtustcError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

_HEADERS = ("Method", "Experts", "Params ×", "Time ×", "R1", "mAP", "Paper Params ×", "Paper Time ×", "Paper R1",
            "Paper mAP", "Preset", "Data", "Seeds")  # fmt: skip


def table2_frame(board: Leaderboard) -> pd.DataFrame:
    """One row per Table 2 run group (see the module docstring), ratios over the MS-ReID row.

    Raises:
        AtustcError: no finished run of any Table 2 method.
    """
    import pandas as pd

    from atustc.methods.uniat import TABLE2

    headline = (board.display or build_layout(DEFAULT_PROTOCOLS).display)[0].group
    frame = board.frame[board.frame["status"] == "finished"]
    by_method = {row.method: row for row in TABLE2}
    mine = frame[frame["method"].isin(list(by_method))]
    if mine.empty:
        raise AtustcError(f"no finished run of a Table 2 method ({', '.join(by_method)})")
    base_name = TABLE2[0].method
    rows = []
    for (preset, data, ckpt), group in mine.groupby(["preset", "data_hash", "checkpoint"], sort=True):
        base = group[group["method"] == base_name]
        basis = "cpu" if group["step_cpu_s_mean"].notna().all() else "wall"
        cost = "step_cpu_s_mean" if basis == "cpu" else "step_time_s_mean"
        base_params = float(base["params_mean"].iloc[0]) if len(base) else math.nan
        base_cost = float(base[cost].iloc[0]) if len(base) else math.nan
        for spec in TABLE2:
            for _, rec in group[group["method"] == spec.method].iterrows():
                params = float(rec["params_mean"])
                rows.append({
                    "method": spec.method, "label": spec.label, "experts": spec.experts, "preset": preset,
                    "data_hash": data, "checkpoint": ckpt, "seeds": rec["seeds"], "n_runs": int(rec["n_runs"]),
                    "params": params, "params_ratio": params / base_params,
                    "step_time_s": float(rec["step_time_s_mean"]), "step_cpu_s": float(rec["step_cpu_s_mean"]),
                    "time_basis": basis, "time_ratio": float(rec[cost]) / base_cost,
                    **{f"{headline}_{m}_{a}": rec.get(f"{headline}_{m}_{a}", math.nan)
                       for m in ("R1", "mAP") for a in ("mean", "std")},
                    "paper_params": spec.params, "paper_time": spec.time, "paper_R1": spec.r1, "paper_mAP": spec.map,
                })  # fmt: skip
    return pd.DataFrame(rows)


def _pct(mean: float, std: float) -> str:
    if mean != mean:
        return "-"
    return f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std == std else "")


def _ratio(value: float) -> str:
    return "-" if value != value else f"{value:.2f}×"


def _cells(frame: pd.DataFrame) -> list[list[str]]:
    headline = next(c for c in frame.columns if c.endswith("_R1_mean"))[: -len("_R1_mean")]
    out = []
    for _, r in frame.iterrows():
        experts = "-" if r["experts"] != r["experts"] or r["experts"] is None else str(int(r["experts"]))
        seeds = str(r["seeds"]).replace(";", ",") if r["seeds"] == r["seeds"] and r["seeds"] != "" else "-"
        out.append([
            r["label"], experts, _ratio(r["params_ratio"]),
            _ratio(r["time_ratio"]) + (" (wall)" if r["time_basis"] == "wall" and r["time_ratio"] == r["time_ratio"] else ""),
            _pct(r[f"{headline}_R1_mean"], r[f"{headline}_R1_std"]),
            _pct(r[f"{headline}_mAP_mean"], r[f"{headline}_mAP_std"]),
            f"{r['paper_params']:.1f}×", f"{r['paper_time']:.1f}×", f"{r['paper_R1']:.1f}", f"{r['paper_mAP']:.1f}",
            r["preset"], str(r["data_hash"])[:8], seeds,
        ])  # fmt: skip
    return out


def render_table2(board: Leaderboard, fmt: Format) -> str:
    """Table 2 as CSV, markdown or LaTeX text.

    Raises:
        AtustcError: unknown format, or no Table 2 run.
    """
    frame = table2_frame(board)
    if fmt == "csv":
        buf = io.StringIO()
        frame.to_csv(buf, index=False, float_format="%.17g", lineterminator="\n")
        return buf.getvalue()
    cells = _cells(frame)
    if fmt == "md":
        lines = ["| " + " | ".join(_HEADERS) + " |", "| " + " | ".join(["---"] + ["---:"] * 9 + ["---"] * 3) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        out = [
            "% Requires \\usepackage{booktabs}.",
            r"\begin{table}[t]",
            r"\centering",
            r"\caption{Comparison with other MoE methods (R1/mAP in \%; ratios over MS-ReID).}",
            r"\label{tab:moe}",
            r"\begin{tabular}{l" + "r" * 9 + "lll}",
            r"\toprule",
            " & ".join(latex_escape(h).replace("×", r"$\times$") for h in _HEADERS) + r" \\",
            r"\midrule",
        ]
        for row in cells:
            out.append(
                " & ".join(latex_escape(c).replace("×", r"$\times$").replace("±", r"$\pm$") for c in row) + r" \\"
            )
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(out) + "\n"
    raise AtustcError(f"--format must be one of csv, md, latex, got {fmt!r}")


def print_table2(board: Leaderboard, console: Console | None = None) -> None:
    """Print Table 2 as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="Table 2: MoE methods over MS-ReID (R1/mAP in %)")
    for i, header in enumerate(_HEADERS):
        table.add_column(header, justify="left" if i == 0 or i >= 10 else "right")
    for row in _cells(table2_frame(board)):
        table.add_row(*row)
    console.print(table)
