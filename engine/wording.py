"""Counts in words for what users read: '1 photo', '3 photos', never '3 photo(s)'."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is one (``plural`` for irregular
    nouns); thousands are grouped, as a shop's figures read best."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def were(n: int) -> str:
    """The verb that agrees with ``n``: '1 photo was', '3 photos were'."""
    return "was" if n == 1 else "were"


def are(n: int) -> str:
    """'1 photo is', '3 photos are'."""
    return "is" if n == 1 else "are"
