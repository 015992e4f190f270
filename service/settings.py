"""Settings: read once from the environment into one frozen object (see README, Configuration).

Embedded defaults make `make run` work with nothing else installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("use true or false")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        parsed = kind(value)
        if parsed <= 0:
            raise ValueError("must be greater than 0")
        return parsed

    return parse


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, with its environment variable in `ENV`."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 5 * 1024 * 1024
    fhir_connect_timeout: float = 0.25
    fhir_read_timeout: float = 1.0
    fhir_fetch_budget: float = 2.0
    fhir_max_pages: int = 20
    fhir_max_entries: int = 20000
    cors_origins: tuple[str, ...] = ("*",)
    today: date | None = None
    log_level: str = "INFO"
    database_url: str = "sqlite:///data/acne-scar-cds.sqlite3"
    migrate_on_start: bool = True
    feedback_keep_comments: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables; SettingsError names a bad one."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name, parse = ENV[f.name]
            if name in env and env[name] != "":
                try:
                    values[f.name] = parse(env[name])
                except ValueError as exc:
                    raise SettingsError(f"{name}={env[name]!r} is not valid: {exc}") from None
        return cls(**values)


# field -> (environment variable, parser)
ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "host": ("HOST", str),
    "port": ("PORT", _positive(int)),
    "max_body_bytes": ("MAX_BODY_BYTES", _positive(int)),
    "fhir_connect_timeout": ("FHIR_CONNECT_TIMEOUT", _positive(float)),
    "fhir_read_timeout": ("FHIR_READ_TIMEOUT", _positive(float)),
    "fhir_fetch_budget": ("FHIR_FETCH_BUDGET", _positive(float)),
    "fhir_max_pages": ("FHIR_MAX_PAGES", _positive(int)),
    "fhir_max_entries": ("FHIR_MAX_ENTRIES", _positive(int)),
    "cors_origins": ("CORS_ORIGINS", _csv),
    "today": ("CDS_TODAY", date.fromisoformat),
    "log_level": ("LOG_LEVEL", str.upper),
    "database_url": ("DATABASE_URL", str),
    "migrate_on_start": ("DB_MIGRATE_ON_START", _flag),
    "feedback_keep_comments": ("FEEDBACK_KEEP_COMMENTS", _flag),
}
