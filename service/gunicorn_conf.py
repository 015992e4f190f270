"""gunicorn settings for `make run` and the Docker image (HOST, PORT, WEB_CONCURRENCY)."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 1
# The EHR waits about 500 ms-a few seconds; finish well inside its timeout.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "10"))
graceful_timeout = 10
accesslog = None  # the app logs one structured line per request
