"""The [reports] and [smtp] settings, validated: an unknown key or a bad value is a SettingsError naming the
settings file, the key and what is allowed.  Secrets (the SMTP user name and password) come from the environment
only: PARKCARBON_SMTP_USERNAME and PARKCARBON_SMTP_PASSWORD."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from carbon.costs import CARBON_PRICE_CNY_PER_T
from park.settings import Settings, SettingsError
from portal.reports import KINDS

FORMATS = ("xlsx", "csv", "pdf")
# National ETS sectors (power since 2021; steel, cement and aluminium smelting from 2025): the park file's
# `industry` of an enterprise in one of these is covered; so is one with a quota plan on the ETS basis.
ETS_INDUSTRIES = ("power", "steel", "iron_and_steel", "cement", "aluminium", "electrolytic_aluminium")
KEY_UNIT_THRESHOLD_TCE = 10_000.0  # 重点用能单位: 10 000 tce a year and above (FACTORS.md)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class ReportSettings:
    monthly_day: int = 5  # day of the month after a month when its monthly and key-units reports run
    quarterly_day: int = 10  # day of the month after a quarter
    annual_day: int = 20  # day of January after a year
    hour: int = 6  # park-local time of day the reports run
    minute: int = 0
    key_units: tuple[str, ...] = ()  # enterprises designated as key energy-consuming units whatever their use
    key_unit_threshold_tce: float = KEY_UNIT_THRESHOLD_TCE  # over the 12 months to the period's end
    ets_industries: tuple[str, ...] = ETS_INDUSTRIES
    carbon_price_cny_per_t: float = CARBON_PRICE_CNY_PER_T
    formats: tuple[str, ...] = FORMATS
    recipients: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> addresses
    delivery_attempts: int = 3
    delivery_backoff_s: float = 30.0  # first wait; doubled after each failed attempt
    catch_up: int = 12  # at most this many missed periods of a kind are produced by one run
    font: str | None = None  # CJK font for PDFs (default: found by portal.pdf)

    def day_of(self, kind: str) -> int:
        return {"monthly": self.monthly_day, "key-units": self.monthly_day, "quarterly": self.quarterly_day,
                "annual": self.annual_day}[kind]


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None = None
    port: int = 587
    sender: str = ""
    security: str = "starttls"  # "starttls" (port 587), "ssl" (SMTPS, port 465) or "none" (tests, local relay)
    timeout_s: float = 30.0
    ca_file: str | None = None  # a private CA or self-signed certificate to trust (default: the system's)
    username: str | None = None  # from PARKCARBON_SMTP_USERNAME
    password: str | None = field(default=None, repr=False)  # from PARKCARBON_SMTP_PASSWORD


def _where(settings: Settings, section: str, key: str) -> str:
    return f"{settings.source}: [{section}] {key}"


def _int(settings: Settings, section: str, key: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise SettingsError(f"{_where(settings, section, key)} = {value!r}: must be a whole number {lo}-{hi}")
    return value


def _number(settings: Settings, section: str, key: str, value: object, lo: float = 0.0) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < lo:
        raise SettingsError(f"{_where(settings, section, key)} = {value!r}: must be a number >= {lo:g}")
    return float(value)


def _strings(settings: Settings, section: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"{_where(settings, section, key)} = {value!r}: must be a list of texts")
    return tuple(value)


def report_settings(settings: Settings) -> ReportSettings:
    """[reports] validated (defaults for what it does not set)."""
    raw = dict(settings.reports or {})
    allowed = set(ReportSettings.__dataclass_fields__)
    unknown = set(raw) - allowed
    if unknown:
        raise SettingsError(f"{settings.source}: unknown [reports] setting(s) {', '.join(sorted(unknown))}; "
                            f"allowed: {', '.join(sorted(allowed))}")
    out: dict = {}
    for key in ("monthly_day", "quarterly_day", "annual_day"):
        if key in raw:
            out[key] = _int(settings, "reports", key, raw[key], 1, 28)  # every month has a 28th
    if "hour" in raw:
        out["hour"] = _int(settings, "reports", "hour", raw["hour"], 0, 23)
    if "minute" in raw:
        out["minute"] = _int(settings, "reports", "minute", raw["minute"], 0, 59)
    for key in ("delivery_attempts", "catch_up"):
        if key in raw:
            out[key] = _int(settings, "reports", key, raw[key], 1, 1000)
    for key in ("key_unit_threshold_tce", "carbon_price_cny_per_t", "delivery_backoff_s"):
        if key in raw:
            out[key] = _number(settings, "reports", key, raw[key])
    for key in ("key_units", "ets_industries", "formats"):
        if key in raw:
            out[key] = _strings(settings, "reports", key, raw[key])
    bad = set(out.get("formats", ())) - set(FORMATS)
    if bad:
        raise SettingsError(f"{_where(settings, 'reports', 'formats')}: unknown format(s) {', '.join(sorted(bad))}; "
                            f"allowed: {', '.join(FORMATS)}")
    if "recipients" in raw:
        rec = raw["recipients"]
        if not isinstance(rec, dict):
            raise SettingsError(f"{_where(settings, 'reports', 'recipients')}: must be a table of report kind = "
                                "[addresses]")
        recipients = {}
        for kind, addresses in rec.items():
            if kind not in KINDS:
                raise SettingsError(f"{_where(settings, 'reports', f'recipients.{kind}')}: unknown report kind; "
                                    f"allowed: {', '.join(KINDS)}")
            addresses = _strings(settings, "reports", f"recipients.{kind}", addresses)
            for a in addresses:
                if not _EMAIL.fullmatch(a):
                    raise SettingsError(f"{_where(settings, 'reports', f'recipients.{kind}')}: {a!r} is not an "
                                        "e-mail address")
            recipients[kind] = addresses
        out["recipients"] = recipients
    if "font" in raw:
        if not isinstance(raw["font"], str):
            raise SettingsError(f"{_where(settings, 'reports', 'font')}: must be a file path")
        out["font"] = str(Path(settings.source).parent / raw["font"]) if settings.source != "defaults" \
            else raw["font"]
    return ReportSettings(**out)


def smtp_settings(settings: Settings, env: dict[str, str] | None = None) -> SmtpSettings:
    """[smtp] validated, with the credentials from the environment."""
    env = dict(os.environ if env is None else env)
    raw = dict(settings.smtp or {})
    allowed = {"host", "port", "from", "security", "timeout_s", "ca_file"}
    unknown = set(raw) - allowed
    if unknown:
        raise SettingsError(f"{settings.source}: unknown [smtp] setting(s) {', '.join(sorted(unknown))}; allowed: "
                            f"{', '.join(sorted(allowed))} (user name and password: PARKCARBON_SMTP_USERNAME, "
                            "PARKCARBON_SMTP_PASSWORD)")
    out: dict = {}
    if "host" in raw:
        if not isinstance(raw["host"], str) or not raw["host"]:
            raise SettingsError(f"{_where(settings, 'smtp', 'host')}: must be a host name")
        out["host"] = raw["host"]
    security = raw.get("security", "starttls")
    if security not in ("starttls", "ssl", "none"):
        raise SettingsError(f"{_where(settings, 'smtp', 'security')} = {security!r}: allowed: starttls, ssl, none")
    out["security"] = security
    out["port"] = _int(settings, "smtp", "port", raw["port"], 1, 65535) if "port" in raw else \
        (465 if security == "ssl" else 587)
    if "from" in raw:
        if not isinstance(raw["from"], str) or not _EMAIL.fullmatch(raw["from"]):
            raise SettingsError(f"{_where(settings, 'smtp', 'from')} = {raw['from']!r}: must be an e-mail address")
        out["sender"] = raw["from"]
    if "timeout_s" in raw:
        out["timeout_s"] = _number(settings, "smtp", "timeout_s", raw["timeout_s"])
    if "ca_file" in raw:
        out["ca_file"] = str(raw["ca_file"])
    out["username"] = env.get("PARKCARBON_SMTP_USERNAME") or None
    out["password"] = env.get("PARKCARBON_SMTP_PASSWORD") or None
    return SmtpSettings(**out)
