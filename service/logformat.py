"""The JSON log line, in one place: the service's logger and gunicorn's own (gunicorn_conf's
logconfig_dict) both use it, so every line on stderr parses the same way.

This module imports nothing of the service: gunicorn builds its loggers before `on_starting`,
and importing the app's modules then would load prometheus_client before its multiprocess
directory is set.
"""

from __future__ import annotations

import time

from pythonjsonlogger.json import JsonFormatter


def json_formatter() -> JsonFormatter:
    """{"time": ISO 8601 in UTC with milliseconds, "level", "event", ...fields}."""
    formatter = JsonFormatter(
        "{asctime}{levelname}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "message": "event"},
    )
    formatter.converter = time.gmtime  # the machine's zone would make lines from two hosts incomparable
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    return formatter
