"""Settings: read once from the environment into one frozen object (see README, Configuration).

The only reader of the service's environment: the app, the command line, gunicorn's
configuration (service/gunicorn_conf.py), its worker and the metrics all take their values from
here. Embedded defaults make `make run` work with nothing else installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from service.fhir_servers import check_entry


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


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.lower() not in allowed:
            raise ValueError(f"use one of {', '.join(allowed)}")
        return value.lower()

    return parse


def _algorithms(value: str) -> tuple[str, ...]:
    """Asymmetric algorithms only: `none` and HMAC would let anyone sign (CDS Hooks §Trusting)."""
    algorithms = _csv(value)
    supported = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    if not algorithms or not set(algorithms) <= supported:
        raise ValueError(f"use asymmetric algorithms from {', '.join(sorted(supported))}")
    return algorithms


def _base_urls(value: str) -> tuple[str, ...]:
    """The URLs clients call this service at (`aud` is one of them plus the path)."""
    urls = tuple(url.rstrip("/") for url in _csv(value))
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{url!r} is not an http(s) base URL such as https://cds.hospital.org")
    return urls


def _fhir_servers(value: str) -> tuple[str, ...]:
    """FHIR base URLs and/or `loopback`; `none` for no server at all."""
    if value.strip().lower() == "none":
        return ()
    return tuple(check_entry(entry) for entry in _csv(value))


def _token_lifetime(value: str) -> int:
    """Seconds; CDS clients sign tokens that live minutes, so a day is already generous."""
    parsed = int(value)
    if not 0 < parsed <= 86400:
        raise ValueError("use seconds from 1 to 86400")
    return parsed


def _non_negative_int(value: str) -> int:
    parsed = int(value)
    if parsed < 0:
        raise ValueError("must be 0 or more")
    return parsed


def default_database_url() -> str:
    """The embedded SQLite file in the user's data directory (XDG Base Directory: $XDG_DATA_HOME,
    else ~/.local/share), so the service and `acne-scar-cds migrate` find the same database
    whatever folder they are started from."""
    data_home = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data_home):  # the XDG spec: a relative path is to be ignored
        data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
    return "sqlite:///" + os.path.join(data_home, "acne-scar-cds", "acne-scar-cds.sqlite3")


def _database_url(value: str) -> str:
    """PostgreSQL URLs as platforms hand them out (`postgres://`, `postgresql://`) name no
    driver, and SQLAlchemy would look for psycopg2 (or fail on `postgres`): use psycopg 3."""
    scheme, separator, rest = value.partition("://")
    if separator and scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return value


CARDS_MODES = ("live", "silent")


@dataclass(frozen=True)
class CardsMode:
    """CARDS_MODE (README "Going live safely"): `live` sends the cards; `silent` evaluates and
    records them (the issued-card store, marked silent) and answers `{"cards": []}`. One mode
    for every service, and/or `service-id=mode` entries: `silent`, `acne-scar-order-sign=silent`,
    `silent,acne-scar-treatment=live`. Service ids are checked against the registry at start-up."""

    default: str = "live"
    services: tuple[tuple[str, str], ...] = ()

    def of(self, service_id: str) -> str:
        """The mode of one service."""
        return dict(self.services).get(service_id, self.default)


def _cards_mode(value: str) -> CardsMode:
    default: str | None = None
    services: dict[str, str] = {}
    for entry in _csv(value):
        service_id, named, mode = (part.strip() for part in entry.rpartition("="))
        if mode.lower() not in CARDS_MODES or (named and not service_id):
            raise ValueError(f"{entry!r}: use live or silent, for every service or as service-id=mode")
        if (service_id in services) if named else (default is not None):
            raise ValueError(f"{entry!r}: a mode is given twice for {service_id or 'every service'}")
        if named:
            services[service_id] = mode.lower()
        else:
            default = mode.lower()
    return CardsMode(default or "live", tuple(sorted(services.items())))


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
    fhir_servers_allowed: tuple[str, ...] = ("loopback",)
    cors_origins: tuple[str, ...] = ("*",)
    today: date | None = None
    log_level: str = "INFO"
    database_url: str = field(default_factory=default_database_url)
    migrate_on_start: bool = True
    feedback_keep_comments: bool = False
    auth_mode: str = "off"
    auth_issuers_file: str | None = None
    auth_issuers: str | None = None
    auth_algorithms: tuple[str, ...] = ("ES384", "RS384")
    auth_clock_skew: int = 60
    auth_max_token_lifetime: int = 3600
    auth_tenants: tuple[str, ...] = ()
    public_base_urls: tuple[str, ...] = ()
    jwks_timeout: float = 2.0
    jwks_cache_ttl: int = 300
    bench_baseline: bool = False
    # Clinical governance (README "Going live safely"): silent pilots and the content's sign-off.
    cards_mode: CardsMode = CardsMode()
    content_review_file: str | None = None
    web_concurrency: int | None = None  # None: service/workers.py default_workers()
    gunicorn_timeout: int = 10
    client_timeout: float = 5.0
    prometheus_multiproc_dir: str | None = None  # set by gunicorn's master when not given

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
    "fhir_servers_allowed": ("FHIR_SERVERS_ALLOWED", _fhir_servers),
    "cors_origins": ("CORS_ORIGINS", _csv),
    "today": ("CDS_TODAY", date.fromisoformat),
    "log_level": ("LOG_LEVEL", str.upper),
    "database_url": ("DATABASE_URL", _database_url),
    "migrate_on_start": ("DB_MIGRATE_ON_START", _flag),
    "feedback_keep_comments": ("FEEDBACK_KEEP_COMMENTS", _flag),
    "auth_mode": ("AUTH_MODE", _choice("off", "required")),
    "auth_issuers_file": ("AUTH_ISSUERS_FILE", str),
    "auth_issuers": ("AUTH_ISSUERS", str),
    "auth_algorithms": ("AUTH_ALGORITHMS", _algorithms),
    "auth_clock_skew": ("AUTH_CLOCK_SKEW", _non_negative_int),
    "auth_max_token_lifetime": ("AUTH_MAX_TOKEN_LIFETIME", _token_lifetime),
    "auth_tenants": ("AUTH_TENANTS", _csv),
    "public_base_urls": ("PUBLIC_BASE_URL", _base_urls),
    "jwks_timeout": ("JWKS_TIMEOUT", _positive(float)),
    "jwks_cache_ttl": ("JWKS_CACHE_TTL", _positive(int)),
    "bench_baseline": ("BENCH_BASELINE", _flag),
    "cards_mode": ("CARDS_MODE", _cards_mode),
    "content_review_file": ("CONTENT_REVIEW_FILE", str),
    "web_concurrency": ("WEB_CONCURRENCY", _positive(int)),
    "gunicorn_timeout": ("GUNICORN_TIMEOUT", _positive(int)),
    "client_timeout": ("CLIENT_TIMEOUT", _positive(float)),
    "prometheus_multiproc_dir": ("PROMETHEUS_MULTIPROC_DIR", str),
}
