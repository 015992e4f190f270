"""gunicorn settings for `make run`, `make bench` and the Docker image.

Every value comes from `Settings` (HOST, PORT, WEB_CONCURRENCY: workers, default 2 x usable CPUs
+ 1, see service/workers.py; GUNICORN_TIMEOUT), read and checked once here, in the master, before
workers fork: a bad setting stops the server with one line saying what to set (not a traceback
per worker). Migrations run once, in the master (`on_starting`), so workers never race to create
tables. Prometheus metrics are collected across workers through PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING

from service.settings import ENV, Settings, SettingsError
from service.workers import default_workers

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker


def checked_settings() -> Settings:
    """The settings, with what the workers would refuse at start-up (trusted issuers, their key
    files, PUBLIC_BASE_URL, CARDS_MODE's service ids, the content sign-off file); a bad one exits
    with one line saying what to set."""
    from service.governance import check_governance
    from service.guard import auth_policy

    try:
        settings = Settings.from_env()
        auth_policy(settings)
        check_governance(settings)
    except SettingsError as exc:
        print(f"acne-scar-cds: cannot start: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    return settings


SETTINGS = checked_settings()
bind = f"{SETTINGS.host}:{SETTINGS.port}"
workers = SETTINGS.web_concurrency or default_workers()
# gunicorn's sync worker, plus a read timeout on client sockets and JSON error pages.
worker_class = "service.gunicorn_worker.JsonSyncWorker"
threads = 1
# The EHR gives a CDS service a few seconds at most; a worker stuck longer is restarted.
timeout = SETTINGS.gunicorn_timeout
# SIGTERM: stop accepting, let in-flight requests finish for up to this long.
graceful_timeout = 10
accesslog = None  # the app logs one structured JSON line per request
# gunicorn's own lines (start, workers, signals) as JSON like the app's, on stderr. gunicorn
# merges this over its defaults key by key, so each key is given whole.
logconfig_dict = {
    "formatters": {"json": {"()": "service.logformat.json_formatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        # a logging config switches gunicorn's access log on: nowhere to write it
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
    },
}

_created_metrics_dir: list[str] = []  # the directory this master made, removed on exit


def on_starting(server: Arbiter) -> None:
    """In the master, before workers fork: a metrics directory for this run (prometheus_client
    is imported after this, so workers write there), and database migrations, once."""
    from service.store import Store

    given = SETTINGS.prometheus_multiproc_dir
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):  # start from zero: stale files would add old counts
            os.remove(os.path.join(given, name))
    else:
        directory = tempfile.mkdtemp(prefix="acne-scar-cds-metrics-")
        _created_metrics_dir.append(directory)
        # For the workers: prometheus_client and their Settings read it from the environment.
        os.environ[ENV["prometheus_multiproc_dir"][0]] = directory
    if SETTINGS.migrate_on_start:
        Store.from_url(SETTINGS.database_url).migrate()
        # Once for all workers: they build their Settings from this environment, so their
        # create_app does not migrate again.
        os.environ[ENV["migrate_on_start"][0]] = "false"


def post_worker_init(worker: object) -> None:
    """The worker has loaded the app: settle its start-up objects (see `settle_after_start`)."""
    from service.app import settle_after_start

    settle_after_start()


def child_exit(server: Arbiter, worker: Worker) -> None:
    """A worker's live gauges die with it (prometheus_client multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: object) -> None:
    for directory in _created_metrics_dir:
        shutil.rmtree(directory, ignore_errors=True)
