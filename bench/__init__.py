"""Benchmarks, run from the repository root as `python -m bench.ingest` or `python -m bench.parkgen`.

Plain scripts rather than pytest tests: they print a table, write JSON to bench/out/ and take minutes.
This module holds what they share: the machine description printed with every result.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

OUT = Path(__file__).parent / "out"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def influxd_version() -> str | None:
    """`influxd version` of the server the benchmarks start, or None when influxd is not installed."""
    binary = shutil.which("influxd")
    if not binary:
        return None
    try:
        return subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, object]:
    """What a benchmark figure depends on: cores, CPU, memory, library and server versions, and the date."""
    import duckdb
    import numpy
    import pandas

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "duckdb": duckdb.__version__,
        "influxdb": influxd_version(),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),  # other work on the machine skews every figure
    }


def print_machine(info: dict[str, object]) -> None:
    print(f"date {info['date']}; {info['nproc']} CPU(s) {info['cpu']}; {info['memory_gib']} GiB; {info['os']}")
    print(f"Python {info['python']}, numpy {info['numpy']}, pandas {info['pandas']}, DuckDB {info['duckdb']}, "
          f"InfluxDB {info['influxdb'] or 'not installed'}; load average {info['loadavg_1m_at_start']}")
