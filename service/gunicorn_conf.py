"""gunicorn settings for `make run`, `make bench` and the Docker image.

Environment: HOST, PORT, WEB_CONCURRENCY (workers), GUNICORN_TIMEOUT. Migrations run once in
the master before workers fork (`on_starting`), so workers never race to create tables.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 1
# The EHR gives a CDS service a few seconds at most; a worker stuck longer is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "10"))
# SIGTERM: stop accepting, let in-flight requests finish for up to this long.
graceful_timeout = 10
accesslog = None  # the app logs one structured JSON line per request


def on_starting(server: object) -> None:
    """Apply database migrations once, in the master."""
    from service.settings import Settings
    from service.store import Store

    settings = Settings.from_env()
    if settings.migrate_on_start:
        Store.from_url(settings.database_url).migrate()
