"""Feedback (CDS Hooks 2.0.1 §Feedback): tie each item to the card this service issued, check
it against that card, and store it once.

Valid items are stored even when others in the same request are not: an item about a card this
service never issued (or naming a suggestion or override reason that card did not carry) can
never become valid, so refusing its neighbours would only lose them. The answer lists every
rejected item; when no item could be stored, it is a 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from cards.catalogue import Catalogue
from service.errors import UnknownCard
from service.schemas import FeedbackSchema, load
from service.store import FeedbackItem, IssuedCard, Store

FEEDBACK_SCHEMA = FeedbackSchema()


def record_feedback(
    service_id: str, body: Mapping[str, Any], store: Store, catalogue: Catalogue, keep_comments: bool
) -> dict[str, int]:
    """Validate and store a feedback request; returns how many items were new and duplicate."""
    items = load(FEEDBACK_SCHEMA, body, "The feedback")["feedback"]
    issued = store.issued(service_id, (str(i["card"]) for i in items))
    checked, rejected = [], []
    for n, item in enumerate(items):
        try:
            checked.append(_check(item, n, issued, catalogue, keep_comments))
        except UnknownCard as exc:
            rejected.append({"item": n, "error": exc.code, "message": exc.message})
    if not checked:
        raise UnknownCard(f"No item could be stored: {rejected[0]['message']}", rejected=rejected)
    stored = store.add_feedback(checked)  # a database outage is a 503 (service/web.py TRANSLATIONS)
    answer: dict[str, Any] = {"stored": stored, "duplicates": len(checked) - stored}
    if rejected:
        answer["rejected"] = rejected
    return answer


def _check(
    item: Mapping[str, Any], index: int, issued: Mapping[str, IssuedCard], catalogue: Catalogue, keep_comments: bool
) -> FeedbackItem:
    where = f"feedback[{index}]"
    card = issued.get(str(item["card"]))
    if card is None:
        raise UnknownCard(f"{where}: card {item['card']} was not issued by this service.")
    accepted = tuple(str(s["id"]) for s in item.get("acceptedSuggestions", []))
    if unknown := [s for s in accepted if s not in card.suggestion_uuids]:
        raise UnknownCard(f"{where}: suggestion {unknown[0]} is not a suggestion of card {card.uuid}.")
    override = item.get("overrideReason", {})
    reason = override.get("reason")
    if reason is not None and not _offered(reason, card, catalogue):
        raise UnknownCard(f"{where}: override reason {reason['code']!r} was not offered on card {card.uuid}.")
    return FeedbackItem(
        card_uuid=card.uuid,
        outcome=item["outcome"],
        # UTC: SQLite keeps no offset, and one instant must be one key for de-duplication.
        outcome_timestamp=item["outcomeTimestamp"].astimezone(UTC),
        accepted_suggestions=accepted,
        override_system=reason.get("system") if reason else None,
        override_code=reason["code"] if reason else None,
        user_comment=override.get("userComment") if keep_comments else None,
    )


def _offered(reason: Mapping[str, Any], card: IssuedCard, catalogue: Catalogue) -> bool:
    """Was this override reason on the card? A card retired from the catalogue since it was
    issued is checked against the override-reason code system only."""
    if reason.get("system", catalogue.override_reason_system) != catalogue.override_reason_system:
        return False
    content = catalogue.cards.get(card.card_id)
    return content is None or reason["code"] in {code for code, _ in content.override_reasons}
