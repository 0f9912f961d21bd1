"""Settings: defaults, one TOML file, environment on top; secrets never from the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from park.settings import SettingsError, load_settings


def test_defaults_use_the_embedded_store_in_var(tmp_path):
    s = load_settings(env={"PARKCARBON_CONFIG": str(tmp_path / "absent.toml")})
    assert s.store_backend == "embedded"
    assert s.embedded_path == Path("var") / "timeseries.duckdb"
    assert s.metadata_url.startswith("sqlite:///") and s.metadata_url.endswith("var/parkcarbon.db")
    assert (s.timezone, s.language) == ("Asia/Shanghai", "zh-CN")


def test_file_then_environment(tmp_path):
    cfg = tmp_path / "parkcarbon.toml"
    cfg.write_text('store_backend = "influx"\ndata_dir = "state"\nport = 9000\n'
                   '[influx]\nurl = "http://10.1.2.3:8086"\ndatabase = "park"\n')
    s = load_settings(cfg, env={"PARKCARBON_PORT": "9100", "PARKCARBON_INFLUX_PASSWORD": "pw",
                                "PARKCARBON_INFLUX_USERNAME": "ops"})
    assert s.store_backend == "influx" and s.port == 9100
    assert s.data_dir == tmp_path / "state"  # relative to the settings file
    assert s.influx == {"url": "http://10.1.2.3:8086", "database": "park", "username": "ops", "password": "pw"}
    assert s.source == str(cfg)


def test_a_secret_in_the_file_is_refused(tmp_path):
    cfg = tmp_path / "parkcarbon.toml"
    cfg.write_text('[influx]\npassword = "hunter2"\n')
    with pytest.raises(SettingsError, match="influx.password' is a secret.*PARKCARBON_INFLUX_PASSWORD"):
        load_settings(cfg, env={})


def test_unknown_keys_and_bad_values_are_named(tmp_path):
    cfg = tmp_path / "parkcarbon.toml"
    cfg.write_text('stroe_backend = "influx"\n')
    with pytest.raises(SettingsError, match="unknown setting.*stroe_backend"):
        load_settings(cfg, env={})
    with pytest.raises(SettingsError, match="PARKCARBON_PORT='eighty'"):
        load_settings(env={"PARKCARBON_PORT": "eighty", "PARKCARBON_CONFIG": str(tmp_path / "none.toml")})
    with pytest.raises(SettingsError, match="neither 'embedded' nor 'influx'"):
        load_settings(env={"PARKCARBON_STORE": "mongo", "PARKCARBON_CONFIG": str(tmp_path / "none.toml")})
    bad = tmp_path / "bad.toml"
    bad.write_text("port = \n")
    with pytest.raises(SettingsError, match="bad.toml"):
        load_settings(bad, env={})
