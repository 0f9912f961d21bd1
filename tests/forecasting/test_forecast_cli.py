"""`parkcarbon forecast backtest FILE`: on the shipped steel-plant data and on bad files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from park.synth import STEEL_CSV, load_steel_profile
from portal.cli import main

MODELS = {"seasonal_naive_daily", "seasonal_naive_weekly", "similar_day", "ets", "gradient_boosting"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("parkcarbon", path=str(Path(sys.executable).parent))
    cmd = [exe, *args] if exe else [sys.executable, "-m", "portal.cli", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_steel_plant_backtest_json_names_every_model_and_the_chosen_one(tmp_path):
    out = run("forecast", "backtest", str(STEEL_CSV), "--freq", "H", "--horizon", "24", "--origins", "2",
              "--repair-midnight", "--timestamps", "end", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    models = {m["model"]: m for m in doc["models"]}
    assert set(models) == MODELS
    for m in models.values():
        assert m["error"] is None
        assert {"mase", "mape", "coverage_80", "coverage_95"} <= set(m)
        assert 0 <= m["coverage_80"] <= m["coverage_95"] <= 1 and m["points"] == 48
    chosen = [m["model"] for m in doc["models"] if m["chosen"]]
    assert chosen == [doc["chosen"]]
    assert doc["chosen"] == min(models.values(), key=lambda m: m["mase"])["model"]
    assert models["seasonal_naive_daily"]["mase_vs_seasonal_naive"] == pytest.approx(1.0)
    assert doc["points"] == 8760 and doc["column"] == "Usage_kWh"
    assert any("365 midnight row" in n for n in doc["notes"])

    # the seasonal-naive MASE recomputed from the file by hand: mean over the two origins of
    # mean |actual - same hour yesterday| / mean in-sample |y_t - y_(t-24)|
    y = load_steel_profile().resample("1h").sum().to_numpy()
    n, mases = len(y), []
    for o in (n - 48, n - 24):
        scale = np.abs(y[24:o] - y[:o - 24]).mean()
        mases.append(np.abs(y[o:o + 24] - y[o - 24:o]).mean() / scale)
    assert models["seasonal_naive_daily"]["mase"] == pytest.approx(np.mean(mases), rel=1e-9)


def _csv(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _hourly_csv(tmp_path: Path, days: int = 21) -> Path:
    rng = np.random.default_rng(0)
    import pandas as pd

    idx = pd.date_range("2026-04-06", periods=24 * days, freq="h")
    v = 50 + 20 * np.sin(2 * np.pi * np.arange(len(idx)) / 24) + rng.normal(0, 2, len(idx))
    rows = "".join(f"{t:%Y-%m-%d %H:%M},{x:.3f}\n" for t, x in zip(idx, v, strict=True))
    return _csv(tmp_path, "time,value\n" + rows)


def test_text_report_lists_models_against_seasonal_naive(tmp_path, capsys):
    path = _hourly_csv(tmp_path)
    assert main(["forecast", "backtest", str(path), "--horizon", "24", "--origins", "2"]) == 0
    out = capsys.readouterr().out
    for name in MODELS:
        assert name in out
    assert "vs SN" in out and "chosen:" in out and "<- chosen" in out


@pytest.mark.parametrize("content,expected", [
    ("time,value\n2026-01-01 00:00,1\n2026-01-01 01:00,x\n", "line 3: value 'x'"),
    ("time,value\n2026-01-01 00:00,1\nyesterday,2\n", "line 3: time 'yesterday'"),
    ("time,value\n2026-01-01 01:00,1\n2026-01-01 00:00,2\n", "line 3: time '2026-01-01 00:00' goes backwards"),
    ("time,value\n2026-01-01 00:00,1\n2026-01-01 00:00,2\n", "repeats"),
    ("time,value\n", "no rows"),
    ("time,value\n2026-01-01T00:00+08:00,1\n2026-01-01T01:00,2\n", "line 3: time '2026-01-01T01:00' has no UTC"),
    ("time,name\n2026-01-01 00:00,a\n", "no numeric value column"),
    ("time,value\n2026-01-01 00:00,1\n2026-01-01 01:00,2\n", "too short for a backtest"),
])
def test_bad_files_get_one_clear_line_and_exit_2(tmp_path, capsys, content, expected):
    path = _csv(tmp_path, content)
    assert main(["forecast", "backtest", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and str(path) in err


def test_missing_file_and_wrong_type(tmp_path, capsys):
    assert main(["forecast", "backtest", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert main(["forecast", "backtest", str(_csv(tmp_path, "x", "data.pdf"))]) == 2
    assert "unknown file type" in capsys.readouterr().err


def test_steel_file_without_the_midnight_repair_says_how_to_fix_it(tmp_path, capsys):
    assert main(["forecast", "backtest", str(STEEL_CSV)]) == 2
    assert "--repair-midnight" in capsys.readouterr().err
