"""Settings a newcomer meets first: the database URL as platforms give it, the default store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.postgres import Postgres
from service.settings import Settings
from service.store import Store


@pytest.mark.system  # a real PostgreSQL
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_platforms_postgres_url_reaches_the_database(postgres: Postgres, scheme: str) -> None:
    """Heroku-style platforms hand out postgres://...; a plain postgresql:// names no driver."""
    given = postgres.url.replace("postgresql+psycopg://", f"{scheme}://")
    store = Store.from_url(Settings.from_env({"DATABASE_URL": given}).database_url)
    store.ping()  # raises when the URL does not reach the server


def test_the_default_store_does_not_depend_on_the_current_folder(tmp_path: Path) -> None:
    """`migrate` from two folders upgrades one database, in the user's data directory."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share")}
    env.pop("DATABASE_URL", None)
    printed = set()
    for folder in (tmp_path / "one", tmp_path / "two"):
        folder.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "service", "migrate"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        printed.add(done.stdout)
        assert not (folder / "data").exists()
    store = tmp_path / "share" / "acne-scar-cds" / "acne-scar-cds.sqlite3"
    assert printed == {f"database sqlite:///{store} is at the latest schema\n"}
    assert store.is_file()
