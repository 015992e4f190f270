"""Print the README's "What the service says, and why" table from the card catalogue.

    .venv/bin/python scripts/catalogue_table.py

tests/system/test_readme.py checks that README.md carries exactly this table.
"""

from __future__ import annotations

from cards.catalogue import Catalogue


def table(catalogue: Catalogue) -> str:
    """The Markdown table: one row per catalogue card."""
    rows = ["| card | rule | indicator | fires when | evidence |", "|---|---|---|---|---|"]
    for cid, card in catalogue.cards.items():
        evidence = "; ".join(f"[{e.key}]({e.url})" for e in card.evidence)
        rows.append(f"| `{cid}` | {card.rule} | {card.indicator} | {card.fires_when} | {evidence} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(Catalogue.load()))
