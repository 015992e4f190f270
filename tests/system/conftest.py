"""The app fixtures (tests/support/apps.py): settings, app, client, live_app."""

from tests.support.apps import app, client, live_app, settings

__all__ = ["app", "client", "live_app", "settings"]
