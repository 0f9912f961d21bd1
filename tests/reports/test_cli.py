"""`parkcarbon report run|list|show|get` and their exit statuses (portal/reports/cli.py EXIT)."""

from __future__ import annotations

import hashlib

import pytest

from portal.cli import main
from portal.reports.cli import EXIT
from tests.reports.support import build


@pytest.fixture
def config(tmp_path):
    settings, engine, store = build(tmp_path)
    store.close()
    engine.dispose()
    path = tmp_path / "parkcarbon.toml"
    path.write_text(f'data_dir = "{tmp_path}"\nmetadata_url = "sqlite:///{tmp_path / "meta.db"}"\n'
                    f'embedded_path = "{tmp_path / "ts.duckdb"}"\n[reports]\nformats = ["xlsx", "csv"]\n',
                    encoding="utf-8")
    return path


def test_run_list_show_get(config, tmp_path, capsys):
    assert main(["--config", str(config), "report", "run", "monthly", "--period", "2026-10"]) == 1  # E3 < 90 %
    out = capsys.readouterr().out
    assert "version 1 (new)" in out and "rule failed: 丙公司: data completeness 85.0%" in out
    assert main(["--config", str(config), "report", "run", "monthly", "--period", "2026-10"]) == 1
    assert "version 1 (unchanged" in capsys.readouterr().out
    assert main(["--config", str(config), "report", "list"]) == 0
    listing = capsys.readouterr().out
    assert "monthly" in listing and "2026-10" in listing and "data-quality" in listing
    assert main(["--config", str(config), "report", "list", "--runs"]) == 0
    assert capsys.readouterr().out.count("monthly") == 2
    assert main(["--config", str(config), "report", "show", "monthly", "2026-10"]) == 0
    shown = capsys.readouterr().out
    assert "monthly-p-2026-10-v1.xlsx" in shown and "rule failed: 丙公司" in shown
    out_dir = tmp_path / "out"
    assert main(["--config", str(config), "report", "get", "monthly", "2026-10", "--out", str(out_dir)]) == 0
    written = {p.name: p for p in out_dir.iterdir()}
    assert "monthly-p-2026-10-v1.xlsx" in written and "monthly-p-2026-10-v1-emissions.csv" in written
    digest = hashlib.sha256(written["monthly-p-2026-10-v1.xlsx"].read_bytes()).hexdigest()
    assert digest in shown  # the file written out is the one recorded


def test_bad_periods_and_missing_reports_exit_2(config, capsys):
    assert main(["--config", str(config), "report", "run", "monthly", "--period", "2026-13"]) == 2
    assert "month 13" in capsys.readouterr().err
    assert main(["--config", str(config), "report", "run", "quarterly", "--period", "2026-10"]) == 2
    assert "YYYY-Qn" in capsys.readouterr().err
    assert main(["--config", str(config), "report", "show", "annual", "2025"]) == 2
    assert "no annual report for 2025" in capsys.readouterr().err
    assert main(["--config", str(config), "report", "get", "monthly", "2026-10", "--version", "3"]) == 2


def test_a_tampered_file_is_refused_on_get(config, tmp_path, capsys):
    assert main(["--config", str(config), "report", "run", "key-units", "--period", "2026-10"]) == 0  # no key unit
    capsys.readouterr()
    stored = next((tmp_path / "reports" / "key-units" / "2026-10" / "v1").glob("*.xlsx"))
    stored.write_bytes(stored.read_bytes() + b"x")
    assert main(["--config", str(config), "report", "get", "key-units", "2026-10", "--out", str(tmp_path / "o")]) == 3
    assert "does not match its recorded SHA-256" in capsys.readouterr().err


def test_exit_statuses_are_documented_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["report", "run", "--help"])
    text = capsys.readouterr().out
    for status in EXIT:
        assert f"  {status}  " in text


def test_run_deliver_mails_the_new_version_or_exits_4(config, tmp_path, capsys):
    import socket

    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.rcpt = []

        async def handle_DATA(self, server, session, envelope):
            self.rcpt.append(list(envelope.rcpt_tos))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    base = config.read_text(encoding="utf-8").replace('formats = ["xlsx", "csv"]', 'formats = ["csv"]')
    mail = ('delivery_attempts = 2\ndelivery_backoff_s = 0\n[reports.recipients]\nkey-units = ["reg@gov.example"]\n'
            '[smtp]\nhost = "127.0.0.1"\nfrom = "pc@park.example"\nsecurity = "none"\n')
    config.write_text(base + mail + f"port = {port}\n", encoding="utf-8")
    controller.start()
    try:
        assert main(["--config", str(config), "report", "run", "key-units", "--period", "2026-10", "--deliver"]) == 0
    finally:
        controller.stop()
    assert "delivery: sent to reg@gov.example" in capsys.readouterr().out
    assert inbox.rcpt == [["reg@gov.example"]]
    # The server is gone: the new version of another period cannot be mailed.
    assert main(["--config", str(config), "report", "run", "key-units", "--period", "2026-09", "--deliver"]) == 4
    assert "not delivered to reg@gov.example after 2 attempt(s)" in capsys.readouterr().err
