"""The `parkcarbon` command line, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from park.parkfile import DEMO_PARK_FILE, load_park_file


def written(out: subprocess.CompletedProcess) -> int:
    return int(out.stdout.split(" readings written")[0].split()[-1].replace(",", ""))


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("parkcarbon", path=str(Path(sys.executable).parent))
    cmd = [exe, *args] if exe else [sys.executable, "-m", "portal.cli", *args]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env={**full_env, **(env or {})})


def test_help_explains_each_command(tmp_path):
    out = run("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("demo", "init", "serve", "check-park"):
        assert command in out.stdout
    demo = run("demo", "--help", cwd=tmp_path)
    assert "synthetic" in demo.stdout and "--days" in demo.stdout


def test_init_imports_the_park_file_and_reimporting_changes_nothing(tmp_path):
    shutil.copy(DEMO_PARK_FILE, tmp_path / "park.yaml")
    (tmp_path / "parkcarbon.toml").write_text('park_file = "park.yaml"\ndata_dir = "state"\n')
    first = run("init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "state" / "parkcarbon.db").exists()
    assert (tmp_path / "state" / "timeseries.duckdb").exists()
    second = run("init", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "0 added" in second.stdout and "0 updated" in second.stdout


def test_a_bad_park_file_is_reported_with_its_line_and_nothing_imported(tmp_path):
    text = Path(DEMO_PARK_FILE).read_text(encoding="utf-8").replace("carrier: natural_gas", "carrier: gass", 1)
    (tmp_path / "park.yaml").write_text(text, encoding="utf-8")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "gass" in ln)
    out = run("init", "--park-file", "park.yaml", cwd=tmp_path, env={"PARKCARBON_DATA_DIR": "state"})
    assert out.returncode == 2
    assert f"park.yaml:{line}:" in out.stderr and "gass" in out.stderr
    check = run("check-park", "park.yaml", cwd=tmp_path)
    assert check.returncode == 2 and f"park.yaml:{line}:" in check.stderr


def test_a_secret_in_the_settings_file_stops_the_command(tmp_path):
    (tmp_path / "parkcarbon.toml").write_text('[influx]\ntoken = "abc"\n')
    out = run("serve", cwd=tmp_path)
    assert out.returncode == 2 and "PARKCARBON_INFLUX_TOKEN" in out.stderr


@pytest.mark.parametrize("days", [3])
def test_demo_prepares_a_filled_embedded_store(tmp_path, days):
    import pandas as pd

    from park.store.embedded import EmbeddedStore

    out = run("demo", "--no-serve", "--days", str(days), "--data-dir", "demo", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    park = load_park_file(DEMO_PARK_FILE)
    per_day = sum(86400 // m.interval_s for m in park.meters)
    devices_per_day = sum(86400 // d.interval_s for d in park.devices)
    assert written(out) > days * (per_day + devices_per_day) * 0.97
    again = run("demo", "--no-serve", "--days", str(days), "--data-dir", "demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert written(again) < (per_day + devices_per_day) / 24  # only the minutes since the first run are new
    store = EmbeddedStore(tmp_path / "demo" / "timeseries.duckdb", park.catalog(), park.timezone)
    now = pd.Timestamp.now(tz=park.timezone)
    energy = store.coverage("energy", now.floor("D") - pd.Timedelta(days=days - 1), now.floor("15min"), by=[])
    assert 0.97 < energy["coverage"].iloc[0] <= 1.0  # a few gaps, by design
    assert set(store.latest("current")["series"]) == {d.id for d in park.devices}
    store.close()


def test_import_reports_bad_lines_and_imports_good_ones(tmp_path):
    shutil.copy(DEMO_PARK_FILE, tmp_path / "park.yaml")
    (tmp_path / "parkcarbon.toml").write_text('park_file = "park.yaml"\ndata_dir = "state"\n')
    assert run("init", cwd=tmp_path).returncode == 0
    meter = load_park_file(DEMO_PARK_FILE).meters[0].id
    (tmp_path / "r.csv").write_text(f"ts,meter,value\n2024-03-01 00:00,{meter},1.5\n2024-03-01 00:15,{meter},x\n")
    dry = run("import", "r.csv", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 1 and "would import 1" in dry.stdout and "line 3" in dry.stdout
    real = run("import", "r.csv", cwd=tmp_path)
    assert real.returncode == 1 and "imported 1 interval values" in real.stdout
    missing = run("import", "nope.csv", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
