"""Settings: safe defaults, then one TOML file (`parkcarbon.toml`), then environment variables.

Secrets (the InfluxDB password or token, the portal's session key) come from the environment only; a
secret written in the TOML file is refused, so it never lands in a repository by accident.

The whole configuration is validated before any command does anything: an unknown key or a value of the wrong
kind in [influx], [collect] and its tables, [serve], or any section whose module registered a validator, is a
SettingsError naming the file, the key and what is allowed.  A module validates its own section:
`register_section("jobs", validate)` where `validate(table: dict, where: str)` raises SettingsError, and the module
is listed in VALIDATOR_MODULES so that it is imported (and registers) before the settings are checked.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SECRET_KEYS = {"password", "token", "secret_key"}


class SettingsError(ValueError):
    """A settings file or variable that cannot be used, with where and why."""


# section name -> validate(table, where): raises SettingsError.  Sections without a validator are not checked.
SECTION_VALIDATORS: dict[str, Callable[[dict, str], None]] = {}
# Modules imported by load_settings so that their register_section calls have run (one line per module).
VALIDATOR_MODULES: list[str] = ["portal.serve", "park.jobs"]


def register_section(name: str, validate: Callable[[dict, str], None]) -> None:
    """Have `validate(table, where)` check the [name] table of every settings file (and an empty one)."""
    SECTION_VALIDATORS[name] = validate


@dataclass
class Settings:
    data_dir: Path = Path("var")
    park_file: Path | None = None
    timezone: str = "Asia/Shanghai"
    metadata_url: str | None = None  # default: SQLite file in data_dir
    store_backend: str = "embedded"  # or "influx"
    embedded_path: Path | None = None  # default: data_dir / "timeseries.duckdb"
    influx: dict = field(default_factory=dict)  # keys of park.store.influx.InfluxConfig
    collect: dict = field(default_factory=dict)  # [collect.modbus], [collect.mqtt], ... (collectors/service.py)
    serve: dict = field(default_factory=dict)  # [serve]: WSGI server, workers, TLS cookies (docs/deploy.md)
    jobs: dict = field(default_factory=dict)  # [jobs]: the scheduled-jobs process (park/jobs.py)
    reports: dict = field(default_factory=dict)  # [reports]: regulator reports, schedule and recipients
    smtp: dict = field(default_factory=dict)  # [smtp]: mail delivery (password from the environment)
    forecast: dict = field(default_factory=dict)  # [forecast]: nightly training, horizons
    evidence: dict = field(default_factory=dict)  # [evidence]: bank evidence packs, signing keys
    host: str = "127.0.0.1"
    port: int = 8050
    language: str = "zh-CN"
    source: str = "defaults"  # where the settings came from, for `parkcarbon --help` and logs

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.metadata_url is None:
            self.metadata_url = f"sqlite:///{(self.data_dir / 'parkcarbon.db').resolve()}"
        if self.embedded_path is None:
            self.embedded_path = self.data_dir / "timeseries.duckdb"
        if self.store_backend not in ("embedded", "influx"):
            raise SettingsError(f"store backend {self.store_backend!r} is neither 'embedded' nor 'influx'")
        if self.language not in ("zh-CN", "en"):
            raise SettingsError(f"language {self.language!r} is neither 'zh-CN' nor 'en'")


_ENV = {
    "PARKCARBON_DATA_DIR": ("data_dir", Path),
    "PARKCARBON_PARK_FILE": ("park_file", Path),
    "PARKCARBON_TIMEZONE": ("timezone", str),
    "PARKCARBON_METADATA_URL": ("metadata_url", str),
    "PARKCARBON_STORE": ("store_backend", str),
    "PARKCARBON_EMBEDDED_PATH": ("embedded_path", Path),
    "PARKCARBON_HOST": ("host", str),
    "PARKCARBON_PORT": ("port", int),
    "PARKCARBON_LANGUAGE": ("language", str),
}
_INFLUX_ENV = {"URL": "url", "DATABASE": "database", "USERNAME": "username", "PASSWORD": "password",
               "TOKEN": "token", "TIMEOUT_S": "timeout_s"}


def _secrets_in(table: dict, path: str, where: str) -> None:
    for key, value in table.items():
        if isinstance(value, dict):
            _secrets_in(value, f"{path}{key}.", where)
        elif key in SECRET_KEYS:
            raise SettingsError(f"{where}: '{path}{key}' is a secret; set it in the environment "
                                f"(e.g. PARKCARBON_INFLUX_{key.upper()}), not in the settings file")


def _table_keys(table: dict, name: str, allowed: dict[str, tuple], where: str) -> None:
    """Every key of [name] known and of an allowed kind (allowed: key -> (types, what is allowed))."""
    for key, value in table.items():
        if key not in allowed:
            raise SettingsError(f"{where}: unknown key '{name}.{key}'; allowed: {', '.join(sorted(allowed))}")
        kinds, what = allowed[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise SettingsError(f"{where}: '{name}.{key}' = {value!r}: expected {what}")
        if what.startswith("a URL") and not str(value).startswith(("http://", "https://")):
            raise SettingsError(f"{where}: '{name}.{key}' = {value!r}: expected {what}")


_NUM, _INT, _STR, _BOOL = ((int, float), "a number"), ((int,), "a whole number"), ((str,), "text"), ((bool,),
                                                                                                    "true or false")
_URL = ((str,), "a URL beginning with http:// or https://")
INFLUX_KEYS = {"url": _URL, "database": _STR, "username": _STR, "password": _STR, "token": _STR,
               "timeout_s": _NUM, "query_timeout_s": _NUM, "retries": _INT, "backoff_s": _NUM, "batch_size": _INT,
               "max_in_flight": _INT, "gzip": _BOOL, "create_database": _BOOL}
_TABLE = ((dict,), "a table")
COLLECT_KEYS = {"modbus": _TABLE, "mqtt": _TABLE, "vendor_http": _TABLE, "writer_interval_s": _NUM,
                "writer_min_rows": _INT, "writer_max_wait_s": _NUM}
COLLECT_TABLES = {
    "modbus": {"enabled": _BOOL, "interval_s": _NUM, "timeout_s": _NUM, "batch_s": _NUM},
    "mqtt": {"host": _STR, "port": _INT, "client_id": _STR, "topic": _STR, "username": _STR, "password_env": _STR,
             "keepalive_s": _INT, "flush_interval_s": _NUM, "batch_size": _INT, "reconnect_min_s": _NUM,
             "reconnect_max_s": _NUM, "sink_retry_max_s": _NUM},
    "vendor_http": None,  # its keys: collectors.sources.vendor_http.VendorSettings, plus interval_s
}


def _validate_influx(table: dict, where: str) -> None:
    _table_keys(table, "influx", INFLUX_KEYS, where)


def _validate_collect(table: dict, where: str) -> None:
    _table_keys(table, "collect", COLLECT_KEYS, where)
    for name, keys in COLLECT_TABLES.items():
        if name not in table:
            continue
        if keys is None:
            from dataclasses import fields

            from collectors.sources.vendor_http import VendorSettings

            keys = {f.name: ((object,), "a value") for f in fields(VendorSettings)} | {"interval_s": _NUM}
            keys["base_url"] = _URL
        _table_keys(table[name], f"collect.{name}", keys, where)


register_section("influx", _validate_influx)
register_section("collect", _validate_collect)


def validate(settings: Settings, where: str) -> None:
    """Check the whole configuration (every registered section, the scalar settings); SettingsError on the first
    problem, naming `where` (the file or the environment), the key and what is allowed."""
    for module in VALIDATOR_MODULES:
        importlib.import_module(module)
    for name, check in SECTION_VALIDATORS.items():
        table = getattr(settings, name, None)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise SettingsError(f"{where}: '{name}' must be a table ([{name}]), not {table!r}")
        check(table, where)
    if not isinstance(settings.port, int) or isinstance(settings.port, bool) or not 0 < settings.port < 65536:
        raise SettingsError(f"{where}: 'port' = {settings.port!r}: expected a port number from 1 to 65535")
    if not isinstance(settings.host, str) or not settings.host:
        raise SettingsError(f"{where}: 'host' = {settings.host!r}: expected an address such as \"127.0.0.1\"")
    try:
        ZoneInfo(str(settings.timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{where}: 'timezone' = {settings.timezone!r}: expected an IANA time zone such as "
                            "\"Asia/Shanghai\"") from None
    if not str(settings.metadata_url).startswith(("sqlite:", "postgresql")):
        raise SettingsError(f"{where}: 'metadata_url' = {settings.metadata_url!r}: expected sqlite:///FILE or "
                            "postgresql+psycopg://USER@HOST/DATABASE")


def load_settings(config: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults < the TOML file (explicit path, $PARKCARBON_CONFIG, or ./parkcarbon.toml) < environment."""
    env = dict(os.environ if env is None else env)
    path = Path(config or env.get("PARKCARBON_CONFIG") or "parkcarbon.toml")
    values: dict = {}
    source = "defaults"
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from None
        _secrets_in(data, "", str(path))
        known = set(Settings.__dataclass_fields__) - {"source"}
        unknown = set(data) - known
        if unknown:
            raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}; known: "
                                f"{', '.join(sorted(known))}")
        values.update(data)
        base = path.parent
        for key in ("data_dir", "park_file", "embedded_path"):  # relative paths are relative to the file
            if key in values:
                values[key] = base / values[key]
        source = str(path)
    elif config is not None:
        raise SettingsError(f"settings file {path} does not exist")
    for var, (key, kind) in _ENV.items():
        if var in env:
            try:
                values[key] = kind(env[var])
            except ValueError:
                raise SettingsError(f"{var}={env[var]!r} is not a valid {kind.__name__}") from None
    influx = dict(values.get("influx", {}))
    for suffix, key in _INFLUX_ENV.items():
        if f"PARKCARBON_INFLUX_{suffix}" in env:
            raw = env[f"PARKCARBON_INFLUX_{suffix}"]
            influx[key] = float(raw) if key == "timeout_s" else raw
    values["influx"] = influx
    try:
        settings = Settings(**values, source=source)
    except TypeError as exc:  # a table where a value belongs, or the reverse
        raise SettingsError(f"{source}: {exc}") from None
    validate(settings, "settings (defaults and PARKCARBON_* variables)" if source == "defaults" else source)
    return settings
