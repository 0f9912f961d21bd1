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


# ---- parkcarbon import: exit statuses, broken files, re-import and correction, progress --------------------
@pytest.fixture(scope="module")
def park_dir(tmp_path_factory):
    """An initialised park (the demo park file, an embedded store in state/), shared by the import tests."""
    root = tmp_path_factory.mktemp("park")
    shutil.copy(DEMO_PARK_FILE, root / "park.yaml")
    (root / "parkcarbon.toml").write_text('park_file = "park.yaml"\ndata_dir = "state"\n')
    out = run("init", cwd=root)
    assert out.returncode == 0, out.stderr
    return root


def meter_id() -> str:
    return load_park_file(DEMO_PARK_FILE).meters[0].id


def store_of(root: Path):
    from park.store.embedded import EmbeddedStore

    park = load_park_file(DEMO_PARK_FILE)
    return EmbeddedStore(root / "state" / "timeseries.duckdb", park.catalog(), park.timezone)


def readings(day: str, n: int = 4, value=lambda i: 1.0 + i, kind: str = "") -> str:
    import pandas as pd

    t0 = pd.Timestamp(day)
    extra = f",{kind}" if kind else ""
    return f"ts,meter,value{',kind' if kind else ''}\n" + "".join(
        f"{t0 + pd.Timedelta(minutes=15 * i):%Y-%m-%d %H:%M},{meter_id()},{value(i)}{extra}\n" for i in range(n))


def one_line_error(out: subprocess.CompletedProcess, words: str) -> None:
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and words in out.stderr, out.stderr


def test_import_help_documents_the_exit_statuses(tmp_path):
    out = run("import", "--help", cwd=tmp_path)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for status in ("0 imported; no row rejected", "1 imported; some rows rejected", "2 a file cannot be read",
                   "3 the store is unavailable or locked", "4 the file's values differ"):
        assert status in text
    assert "--meter ID" in out.stdout and "--correct" in out.stdout


def test_import_exit_statuses_for_good_and_broken_files(park_dir):
    utf16 = park_dir / "utf16.csv"
    utf16.write_text(readings("2024-04-01"), encoding="utf-16")
    out = run("import", "utf16.csv", cwd=park_dir)
    assert out.returncode == 0 and "4 rows read = 4 accepted + 0 rejected + 0 reported" in out.stdout, out.stderr
    (park_dir / "fake.xlsx").write_text("ts,meter,value\n")
    (park_dir / "extra.csv").write_text(readings("2024-04-02", 3) + f"2024-04-02 01:00,{meter_id()},1,2\n")
    (park_dir / "gbk_late.csv").write_bytes(readings("2024-04-03", 3).encode() + "x,y,\xff\n".encode("latin-1"))
    (park_dir / "empty.csv").write_text("")
    (park_dir / "folder.csv").mkdir()
    cases = {"fake.xlsx": "not an Excel workbook", "extra.csv": "line 5: 4 fields where the header has 3",
             "gbk_late.csv": "cannot be decoded", "empty.csv": "is empty", "folder.csv": "is a directory",
             "missing.csv": "no such file"}
    for name, words in cases.items():
        out = run("import", name, cwd=park_dir)
        assert out.returncode == 2, (name, out.stderr)
        one_line_error(out, words)
    with store_of(park_dir) as store:
        import pandas as pd

        days = store.points("energy", pd.Timestamp("2024-04-02", tz="Asia/Shanghai"),
                            pd.Timestamp("2024-04-04", tz="Asia/Shanghai"))
        assert days.empty and store.quarantined().empty


def test_import_refuses_a_locked_store_with_its_own_status(park_dir):
    (park_dir / "locked.csv").write_text(readings("2024-04-05"))
    with store_of(park_dir):
        out = run("import", "locked.csv", cwd=park_dir)
    assert out.returncode == 3
    one_line_error(out, "in use by another process")


def test_import_an_unreadable_file_as_an_unprivileged_user(tmp_path_factory):
    """Root reads any file, so the permission error is met honestly: the command runs as user nobody."""
    import tempfile

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run the command as another user")
    root = Path(tempfile.mkdtemp(prefix="parkcarbon-perm-"))
    try:
        os.chmod(root, 0o755)
        shutil.copy(DEMO_PARK_FILE, root / "park.yaml")
        (root / "parkcarbon.toml").write_text('park_file = "park.yaml"\ndata_dir = "state"\n')
        assert run("init", cwd=root).returncode == 0
        for dirpath, _, files in os.walk(root / "state"):
            os.chown(dirpath, 65534, 65534)
            for f in files:
                os.chown(os.path.join(dirpath, f), 65534, 65534)
        secret = root / "secret.csv"
        secret.write_text(readings("2024-04-06"))
        secret.chmod(0)
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "portal.cli",
               "import", "secret.csv"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
        out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300, env={**env, "HOME": str(root)})
        assert out.returncode == 2, out.stderr
        one_line_error(out, "secret.csv: cannot be read: permission denied")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_reimport_and_correction_of_a_cumulative_file(park_dir):
    import pandas as pd

    (park_dir / "reg.csv").write_text(readings("2024-04-10", 32, lambda i: 1000 + 2.5 * i, "cumulative"))
    first = run("import", "reg.csv", cwd=park_dir)
    assert first.returncode == 0, first.stdout + first.stderr
    again = run("import", "reg.csv", cwd=park_dir)
    assert again.returncode == 0 and "imported 31 interval values" in again.stdout, again.stdout + again.stderr
    (park_dir / "fixed.csv").write_text(readings("2024-04-10", 32, lambda i: 1000 + 3.0 * i, "cumulative"))
    refused = run("import", "fixed.csv", cwd=park_dir)
    assert refused.returncode == 4 and "--correct" in refused.stderr and "Traceback" not in refused.stderr
    day = (pd.Timestamp("2024-04-10", tz="Asia/Shanghai"), pd.Timestamp("2024-04-11", tz="Asia/Shanghai"))
    with store_of(park_dir) as store:
        assert store.points("energy", *day)["value"].sum() == pytest.approx(31 * 2.5)
        assert store.quarantined().empty
    fixed = run("import", "fixed.csv", "--correct", cwd=park_dir)
    assert fixed.returncode == 0 and f"31 values of {meter_id()} replaced" in fixed.stdout, fixed.stderr
    with store_of(park_dir) as store:
        assert store.points("energy", *day)["value"].sum() == pytest.approx(31 * 3.0)
        audit = store.audit_log()
    assert audit["action"].tolist() == ["correct"] and "fixed.csv" in audit["reason"].iloc[0]
    unit = load_park_file(DEMO_PARK_FILE).catalog()[meter_id()].unit
    assert f"old total 77.5 {unit}, new total 93 {unit}" in audit["reason"].iloc[0]


def test_import_shows_progress_on_a_terminal_only(park_dir):
    import pty
    import select

    (park_dir / "progress.csv").write_text(readings("2024-04-20", 8))
    quiet = run("import", "progress.csv", cwd=park_dir)
    assert quiet.returncode == 0 and quiet.stderr == ""
    master, slave = pty.openpty()
    exe = shutil.which("parkcarbon", path=str(Path(sys.executable).parent))
    cmd = [exe, "import", "progress.csv"] if exe else [sys.executable, "-m", "portal.cli", "import", "progress.csv"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    proc = subprocess.Popen(cmd, cwd=park_dir, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(60)
    os.close(master)
    text = seen.decode()
    assert proc.returncode == 0
    assert "progress.csv: checking 8 rows" in text and "rows/s" in text and "100%" in text
