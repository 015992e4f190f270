from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.content import copy_content


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A copy of the shipped content, to break."""
    return copy_content(tmp_path)
