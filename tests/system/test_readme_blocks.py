"""Every shell block of the README runs as printed, in order, against a fresh `make run`
(scripts/readme_blocks.py: the markers, the terminals, the environment). A new block needs a
marker line before it, or this file fails naming it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from scripts.readme_blocks import README, Block, MarkerError, Session, parse

pytestmark = pytest.mark.integration


def blocks() -> list[Block]:
    try:
        return parse(README.read_text(encoding="utf-8"))
    except MarkerError:
        return []  # test_every_shell_block_says_how_it_runs names the block


def block_id(block: Block) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", block.heading.lower()).strip("-")
    return f"{block.line}-{words[:40]}-{block.kind}"


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    newcomer = Session()
    try:
        yield newcomer
    finally:
        newcomer.close()


def test_every_shell_block_says_how_it_runs() -> None:
    found = parse(README.read_text(encoding="utf-8"))  # MarkerError names the block
    servers = {b.name for b in found if b.kind == "server"}
    assert {b.name for b in found if b.kind == "client"} <= servers
    assert "make run" in next(b for b in found if b.kind == "server").text


@pytest.mark.parametrize("block", blocks(), ids=block_id)
def test_the_block_runs_as_printed(session: Session, block: Block) -> None:
    if block.kind == "skip":
        pytest.skip(block.reason)
    outcome = session.run(block)
    assert outcome.ok, f"{block.label}: {outcome.why}\n{block.text}\n--- output:\n{outcome.output[-4000:]}"
