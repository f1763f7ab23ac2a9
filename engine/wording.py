"""Counts in words for what users read: '1 photo', '3 photos', never '3 photo(s)'."""

from __future__ import annotations

import unicodedata


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


def one_line(value: object, *, squeeze: bool = True) -> str:
    """Sheet text as one printable line: line breaks and tabs become spaces, and control and
    format characters (an ANSI escape in a cell recolours or clears the terminal; a
    zero-width space) are dropped.

    ``squeeze=False`` keeps runs of spaces: a SKU is printed to be copied into ``confirm``,
    which takes it as the sheet spells it ('AB  12' is not 'AB 12') or, failing that, as
    printed here (``decisions``); names are only read."""
    text = "".join(
        " " if ch.isspace() else ch
        for ch in str(value or "")
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return " ".join(text.split()) if squeeze else text.strip()
