"""Errors the clinical core raises; the service maps each to one HTTP status."""

from __future__ import annotations


class CardsError(Exception):
    """Base class of every error raised by the clinical core."""


class ContentError(CardsError):
    """The shipped content (catalogue, value sets, code systems) is broken: stop the boot."""
