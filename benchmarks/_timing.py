"""Time a command as a whole process: wall time, CPU time (user + sys) and its own peak resident memory.

The command is started by a small launcher interpreter, which waits for it with ``os.wait4`` and
reports that process's figures alone. Why not ``resource.getrusage(RUSAGE_CHILDREN)`` in the
benchmark itself: Linux records, at ``exec``, the high-water RSS of the memory the child was
forked (or vforked) from, so a child of a benchmark that has just built 768 MB of features
reports the benchmark's own peak (``python -c pass`` then "uses" 1.5 GB). The launcher is small
when it starts the command, so the peak read here is the command's.

Used by the scripts of this folder (they run as ``python benchmarks/x.py``, so this module is
imported as ``_timing``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_LAUNCHER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - t0
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "wall": wall,
                  "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}))
"""


@dataclass(frozen=True)
class ProcessTime:
    """Figures of one finished process."""

    wall_s: float
    cpu_s: float
    peak_mb: float

    def describe(self) -> str:
        """``"12.3 s wall, 20.1 s CPU, peak RSS 1,234 MB"``."""
        return f"{self.wall_s:.1f} s wall, {self.cpu_s:.1f} s CPU, peak RSS {self.peak_mb:,.0f} MB"


def time_process(cmd: list[str]) -> ProcessTime:
    """Run ``cmd`` (its stdout discarded, its stderr shown) and return its own wall, CPU and peak RSS.

    Raises:
        subprocess.CalledProcessError: the command failed.
    """
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], check=True, stdout=subprocess.PIPE, text=True)
    rec = json.loads(out.stdout)
    if rec["status"] != 0:
        raise subprocess.CalledProcessError(rec["status"], cmd)
    return ProcessTime(rec["wall"], rec["cpu"], rec["maxrss_kb"] / 1024)


def time_eval(table: Path, features: Path, protocol: str, json_path: Path) -> ProcessTime:
    """Time ``atustc eval --table T --features F --protocol P --json J --no-progress`` (the venv's ``atustc``)."""
    atustc = str(Path(sys.executable).with_name("atustc"))
    return time_process(
        [
            atustc,
            "eval",
            "--table",
            str(table),
            "--features",
            str(features),
            "--protocol",
            protocol,
            "--json",
            str(json_path),
            "--no-progress",
        ]  # fmt: skip
    )
