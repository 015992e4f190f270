"""gunicorn settings for `make run`, `make bench` and the Docker image.

Environment: HOST, PORT, WEB_CONCURRENCY (workers; default 2 x usable CPUs + 1, see
service/workers.py), GUNICORN_TIMEOUT. The settings are checked and migrations run once in the
master before workers fork (`on_starting`): a bad setting stops the server with one line saying
what to set (not a traceback per worker), and workers never race to create tables. Prometheus
metrics are collected across workers through PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter
    from gunicorn.workers.base import Worker

    from service.settings import Settings

from service.workers import default_workers

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or default_workers())
# gunicorn's sync worker, plus a read timeout on client sockets and JSON error pages.
worker_class = "service.gunicorn_worker.JsonSyncWorker"
threads = 1
# The EHR gives a CDS service a few seconds at most; a worker stuck longer is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "10"))
# SIGTERM: stop accepting, let in-flight requests finish for up to this long.
graceful_timeout = 10
accesslog = None  # the app logs one structured JSON line per request
# gunicorn's own lines (start, workers, signals) as JSON like the app's, on stderr. gunicorn
# merges this over its defaults key by key, so each key is given whole.
logconfig_dict = {
    "formatters": {"json": {"()": "service.logformat.json_formatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
                # a logging config switches gunicorn's access log on: nowhere to write it
                "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False}},
}

_created_metrics_dir: list[str] = []  # the directory this master made, removed on exit


def on_starting(server: object) -> None:
    """In the master, before workers fork: a metrics directory for this run (prometheus_client
    is imported after this, so workers write there), the settings checked, and database
    migrations, once."""
    from service.store import Store

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):  # start from zero: stale files would add old counts
            os.remove(os.path.join(given, name))
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="acne-scar-cds-metrics-")
        _created_metrics_dir.append(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    settings = checked_settings()
    if settings.migrate_on_start:
        Store.from_url(settings.database_url).migrate()


def checked_settings() -> Settings:
    """The settings, with what the workers would refuse at start-up (trusted issuers, their key
    files, PUBLIC_BASE_URL); a bad one exits with one line saying what to set."""
    from service.guard import auth_policy
    from service.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
        auth_policy(settings)
    except SettingsError as exc:
        print(f"acne-scar-cds: cannot start: {exc}", file=sys.stderr, flush=True)
        on_exit(None)
        sys.exit(1)
    return settings


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
