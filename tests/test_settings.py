"""Settings: defaults, one TOML file, environment on top; secrets never from the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from park.settings import SECTION_VALIDATORS, SettingsError, load_settings, register_section


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


@pytest.mark.parametrize(("toml", "message"), [
    ('[influx]\ndatbase = "park"\n', r"unknown key 'influx.datbase'; allowed: .*database"),
    ('[influx]\nurl = "10.1.2.3:8086"\n', r"'influx.url' = '10.1.2.3:8086': expected a URL beginning with http://"),
    ('[influx]\ntimeout_s = "ten"\n', r"'influx.timeout_s' = 'ten': expected a number"),
    ('[collect.mqtt]\nhost = "broker"\nprot = 1883\n', r"unknown key 'collect.mqtt.prot'; allowed: .*port"),
    ('[collect.mqtt]\nport = "1883"\n', r"'collect.mqtt.port' = '1883': expected a whole number"),
    ('[collect.vendor_http]\nbase_url = "vendor.example"\n', r"'collect.vendor_http.base_url'.*http://"),
    ('[collect]\nwriter_max_wait = 5\n', r"unknown key 'collect.writer_max_wait'"),
    ('[serve]\nworkers = 0\n', r"'serve.workers' = 0: expected a whole number of worker processes, at least 1"),
    ('[serve]\nworker = 4\n', r"unknown key 'serve.worker'; allowed: access_log, .*workers"),
    ('[serve]\nsecure_cookies = "yes"\n', r"'serve.secure_cookies' = 'yes': expected true or false"),
    ('serve = 4\n', r"'serve' must be a table"),
    ('port = 70000\n', r"'port' = 70000: expected a port number"),
    ('timezone = "Asia/Shanghia"\n', r"'timezone' = 'Asia/Shanghia': expected an IANA time zone"),
    ('metadata_url = "mysql://x/y"\n', r"'metadata_url' = 'mysql://x/y': expected sqlite:///FILE or postgresql"),
])
def test_every_section_is_checked_before_anything_runs_with_file_key_and_what_is_allowed(tmp_path, toml, message):
    cfg = tmp_path / "parkcarbon.toml"
    cfg.write_text(toml)
    with pytest.raises(SettingsError, match=message) as err:
        load_settings(cfg, env={})
    assert str(err.value).startswith(str(cfg))


def test_a_module_registers_the_validator_of_its_own_section_and_others_go_unchecked(tmp_path):
    cfg = tmp_path / "parkcarbon.toml"
    cfg.write_text('[forecast]\nwhatever = 1\n[evidence]\nhorizon = -1\n')
    seen = []

    def check(table: dict, where: str) -> None:
        seen.append(dict(table))
        if table.get("horizon", 0) < 0:
            raise SettingsError(f"{where}: 'evidence.horizon' must not be negative")

    try:
        register_section("evidence", check)
        with pytest.raises(SettingsError, match="parkcarbon.toml: 'evidence.horizon' must not be negative"):
            load_settings(cfg, env={})
        cfg.write_text('[forecast]\nwhatever = 1\n')  # [forecast]: no validator registered here, not checked
        assert load_settings(cfg, env={}).forecast == {"whatever": 1}
        assert seen[-1] == {}  # and an absent section is checked as an empty table
    finally:
        SECTION_VALIDATORS.pop("evidence", None)


def test_a_bad_setting_stops_init_before_the_park_file_is_imported(tmp_path):
    """`init` with an unknown key in [influx] used to import the park into the metadata database first, then die
    with a traceback; now it says what is wrong and touches nothing."""
    import subprocess
    import sys

    from park.parkfile import DEMO_PARK_FILE

    cfg = tmp_path / "parkcarbon.toml"
    cfg.write_text('data_dir = "state"\n[influx]\nurl = "http://127.0.0.1:1"\ndb = "park"\n')
    done = subprocess.run([str(Path(sys.executable).with_name("parkcarbon")), "--config", str(cfg), "init",
                           "--park-file", str(DEMO_PARK_FILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown key 'influx.db'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "state").exists()
