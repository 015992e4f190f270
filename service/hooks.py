"""Calling a CDS service, one protocol step a line (CDS Hooks 2.0.1 §Calling a CDS Service)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import requests
from marshmallow import Schema
from sqlalchemy.exc import SQLAlchemyError

from cards.engine import Engine
from cards.render import RenderedCard
from service.errors import InvalidCards
from service.fhir_client import FetchPolicy
from service.hook_request import HookRequest
from service.prefetch import gather
from service.registry import C, ServiceDescriptor
from service.schemas import HookRequestSchema, load
from service.store import Store

log = logging.getLogger("acne_scar_cds")


@dataclass(frozen=True)
class CallResult:
    """What one call produced: cards, and what the request log may say about it."""

    cards: list[RenderedCard]
    hook_instance: str
    fetched: list[str]

    def response(self, mode: str = "live") -> dict[str, Any]:
        """The CDS Hooks answer: the cards, or none in silent mode (CARDS_MODE)."""
        return {"cards": [c.card for c in self.cards] if mode == "live" else []}


def call_service(
    service: ServiceDescriptor[C],
    body: Mapping[str, Any],
    session: requests.Session,
    policy: FetchPolicy,
    engine: Engine,
    today: date,
) -> CallResult:
    """Validate the request, gather prefetch, run the guideline, check the cards."""
    request = parse_request(service, body)
    gathered = gather(service.prefetch, request, session, policy, related=request.context.draft_orders)
    # Imperfect clinical data is read, not refused (GUIDELINE §1, v2): the engine raises nothing
    # for it, and what it could not read is said in the cards.
    cards = service.handler(engine, request, gathered.resources, today)
    check_cards(cards, engine)
    return CallResult(cards, str(request.hook_instance), gathered.fetched)


@functools.cache
def request_schema(hook: str, context_schema: type[Schema]) -> HookRequestSchema:
    """One schema per hook and context: marshmallow schemas are reusable, and building one
    costs as much as using it."""
    return HookRequestSchema(hook, context_schema)


def parse_request(service: ServiceDescriptor[C], body: Mapping[str, Any]) -> HookRequest[C]:
    """The hook request, validated and typed for this service; BadRequest with field messages."""
    request: HookRequest[C] = load(request_schema(service.hook, service.context_schema), body, "The request")
    return request


def check_cards(cards: list[RenderedCard], engine: Engine) -> None:
    """Refuse to send a card that breaks CDS Hooks 2.0.1 (a bug of ours, answered 500). The
    content was checked in full at start-up; this checks what the chart put in (cards.card_check)."""
    for rendered in cards:
        if problems := engine.card_check.problems(rendered.card):
            raise InvalidCards(
                f"Card {rendered.card_id!r} breaks the CDS Hooks card rules; no cards were sent.", problems=problems
            )


def remember_cards(store: Store, service_id: str, result: CallResult, mode: str = "live") -> None:
    """Count the call and record its cards for feedback (and, in silent mode, for the pilot's
    report). A database outage must not withhold clinical advice, so a failure here is logged
    (feedback on these cards will be refused) and the cards are still sent."""
    try:
        store.record_issued(service_id, result.hook_instance, result.cards, mode=mode)
    except SQLAlchemyError as exc:
        log.error("could not record issued cards: %s", type(exc).__name__)
