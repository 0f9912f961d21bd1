"""Settings: safe defaults, then one TOML file (`parkcarbon.toml`), then environment variables.

Secrets (the InfluxDB password or token, the portal's session key) come from the environment only; a
secret written in the TOML file is refused, so it never lands in a repository by accident.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SECRET_KEYS = {"password", "token", "secret_key"}


class SettingsError(ValueError):
    """A settings file or variable that cannot be used, with where and why."""


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
    return Settings(**values, source=source)
