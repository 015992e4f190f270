"""A copy of the clinical content to break, for the tests that show a broken file stops the boot."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cards.terminology import CONTENT


def copy_content(root: Path) -> Path:
    """The shipped content, copied under `root`."""
    shutil.copytree(CONTENT, root / "content")
    return root / "content"


def edit_catalogue(root: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Apply `change` to the catalogue of the content at `root`."""
    path = root / "catalogue.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
