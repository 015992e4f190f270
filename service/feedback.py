"""Feedback (CDS Hooks 2.0.1 §Feedback): tie each item to the card this service issued, check
it against that card, and store it once.

All items of a request are checked before any is stored: a request with one unknown card
stores nothing and says which card, so a retry after a fix cannot double-count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cards.catalogue import Catalogue
from service.errors import BadRequest, StoreUnavailable, UnknownCard
from service.schemas import FeedbackSchema
from service.store import FeedbackItem, IssuedCard, Store


def record_feedback(service_id: str, body: Mapping[str, Any], store: Store, catalogue: Catalogue,
                    keep_comments: bool) -> dict[str, int]:
    """Validate and store a feedback request; returns how many items were new and duplicate."""
    try:
        items = FeedbackSchema().load(body)["feedback"]
    except ValidationError as exc:
        raise BadRequest("The feedback does not follow CDS Hooks 2.0.1.", errors=exc.messages) from None
    try:
        issued = store.issued(service_id, (str(i["card"]) for i in items))
        checked = [_check(i, n, issued, catalogue, keep_comments) for n, i in enumerate(items)]
        stored = store.add_feedback(checked)
    except SQLAlchemyError:
        raise StoreUnavailable("The feedback store is unavailable; nothing was stored. Retry later.") from None
    return {"stored": stored, "duplicates": len(checked) - stored}


def _check(item: Mapping[str, Any], index: int, issued: Mapping[str, IssuedCard],
           catalogue: Catalogue, keep_comments: bool) -> FeedbackItem:
    where = f"feedback[{index}]"
    card = issued.get(str(item["card"]))
    if card is None:
        raise UnknownCard(f"{where}: card {item['card']} was not issued by this service; "
                          "nothing was stored.", item=index)
    accepted = tuple(str(s["id"]) for s in item.get("acceptedSuggestions", []))
    if unknown := [s for s in accepted if s not in card.suggestion_uuids]:
        raise UnknownCard(f"{where}: suggestion {unknown[0]} is not a suggestion of card "
                          f"{card.uuid}; nothing was stored.", item=index)
    override = item.get("overrideReason", {})
    reason = override.get("reason")
    if reason is not None:
        offered = {code for code, _ in catalogue[card.card_id].override_reasons}
        if reason["code"] not in offered or reason.get("system", catalogue.override_reason_system) \
                != catalogue.override_reason_system:
            raise UnknownCard(f"{where}: override reason {reason['code']!r} was not offered on card "
                              f"{card.uuid}; nothing was stored.", item=index)
    return FeedbackItem(
        card_uuid=card.uuid,
        outcome=item["outcome"],
        outcome_timestamp=item["outcomeTimestamp"],
        accepted_suggestions=accepted,
        override_system=reason.get("system") if reason else None,
        override_code=reason["code"] if reason else None,
        user_comment=override.get("userComment") if keep_comments else None,
    )
