"""Staff decisions on photos: confirm, reject, no match, undo — append-only.

Rows are never updated or deleted, so the history is an audit trail and the training data of
the learning stage; undo appends a row naming the decision it cancels. A photo's state is the
last decision of its that is not cancelled.
"""

from __future__ import annotations

import dataclasses
import difflib
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.db import CURRENT_SKUS, transaction, utcnow
from engine.wording import one_line

if TYPE_CHECKING:
    from engine.library import Library

ACTIONS = ("confirm", "reject", "no_match")


class DecisionError(ValueError):
    pass


@dataclass(frozen=True)
class Decision:
    id: int
    photo_id: int
    action: str
    sku: str | None
    rank: int | None
    score: float | None
    model_version: str | None
    decided_at: str
    undoes: int | None = None
    # Said beside the decision, not stored: e.g. the SKU confirmed has left the catalog.
    warning: str = ""


@dataclass(frozen=True)
class PhotoState:
    """'pending' (not matched), 'suggested', 'confirmed' or 'no_match'."""

    status: str
    decision: Decision | None


_COLUMNS = "id, photo_id, action, sku, rank, score, model_version, decided_at, undoes"


def _decision(row: tuple) -> Decision:  # type: ignore[type-arg]
    return Decision(*row)


def record(
    lib: Library, photo_id: int, action: str, sku: str | None, *, by_score: bool = False
) -> Decision:
    """Append a decision; rank and score are those the SKU had in the stored suggestions.
    ``by_score``: taken on the score, unseen ("Accept confident"), which calibration skips."""
    if action not in ACTIONS:
        raise DecisionError(f"unknown action {action!r}")
    if lib.db.execute("SELECT 1 FROM photos WHERE id = ?", [photo_id]).fetchone() is None:
        raise DecisionError(f"no photo with id {photo_id}")
    if action != "no_match":
        sku = _catalog_sku(lib, (sku or "").strip())
    current = photo_state(lib, photo_id).decision
    if action in ("confirm", "no_match"):
        # The same decision again (Enter pressed twice, a script re-run) records nothing:
        # otherwise the first undo would seem to do nothing.
        if current is not None and (current.action, current.sku) == (action, sku):
            return current
    else:
        if current is not None and current.action == "confirm" and current.sku == sku:
            # Confirmed and rejected at once: the export would still count it. Said instead.
            raise DecisionError(
                f"photo {photo_id} is confirmed as {sku}; undo that first, or confirm the right SKU"
            )
        # A SKU already rejected for this photo (and not undone): the same, nothing new.
        row = lib.db.execute(
            f"SELECT {_COLUMNS} FROM decisions WHERE {_LIVE} AND photo_id = ? "
            "AND action = 'reject' AND sku = ? ORDER BY id DESC LIMIT 1",
            [photo_id, sku],
        ).fetchone()
        if row is not None:
            return _decision(row)
    version = lib.model_version
    rank = score = None
    if sku:
        hit = lib.db.execute(
            "SELECT rank, score FROM suggestions WHERE photo_id = ? AND model_version = ? "
            "AND sku = ?",
            [photo_id, version, sku],
        ).fetchone()
        if hit:
            rank, score = hit
    with transaction(lib.db):
        new_id = (
            lib.db["decisions"]
            .insert(
                {
                    "photo_id": photo_id,
                    "action": action,
                    "sku": sku,
                    "rank": rank,
                    "score": score,
                    "model_version": version,
                    "decided_at": utcnow(),
                    "by_score": int(by_score),
                }
            )
            .last_pk
        )
    return get(lib, int(new_id))


def withdrawn_warning(lib: Library, sku: str | None) -> str:
    """A sentence when ``sku`` was withdrawn (the supplier's sheet dropped it), else "": it
    can still be confirmed (goods delivered before it left), but never without a word."""
    gone = (lib.product(sku) or {}).get("withdrawn_at") if sku else None
    if not gone:
        return ""
    return f"{sku} is no longer in the supplier's catalog (withdrawn {str(gone)[:10]})"


def rejected_skus(lib: Library, photo_id: int) -> set[str]:
    """The SKUs staff rejected for a photo (and did not undo)."""
    return rejected_by_photo(lib, photo_id).get(photo_id, set())


def rejected_by_photo(lib: Library, photo_id: int | None = None) -> dict[int, set[str]]:
    """Per photo, its live rejected SKUs: what a default confirm, the suggestions shown and
    an export's 'suggested' rows must pass over (one query for the whole library)."""
    sql = f"SELECT photo_id, sku FROM decisions WHERE {_LIVE} AND action = 'reject'"
    params: list[object] = []
    if photo_id is not None:
        sql += " AND photo_id = ?"
        params.append(photo_id)
    out: dict[int, set[str]] = {}
    for pid, sku in lib.db.execute(sql, params).fetchall():
        if sku:
            out.setdefault(int(pid), set()).add(str(sku))
    return out


def _catalog_sku(lib: Library, sku: str) -> str:
    """The catalog's spelling of ``sku`` (case and surrounding spaces forgiven), or a
    DecisionError that names the closest SKUs."""
    if not sku:
        raise DecisionError("a SKU is needed")
    if lib.product(sku) is not None:
        return sku
    every = [str(r[0]) for r in lib.db.execute("SELECT sku FROM products").fetchall()]
    # Case forgiven, or as printed (a SKU with a no-break space, a tab or a zero-width
    # character in the sheet is shown on one plain line, and copied from there): taken only
    # when one product answers to it either way, never a guess between two.
    shown = one_line(sku, squeeze=False).casefold()
    same = {s for s in every if s.casefold() == sku.casefold()}
    same |= {s for s in every if one_line(s, squeeze=False).casefold() == shown}
    if len(same) == 1:
        return same.pop()
    if len(same) > 1:
        named = " or ".join(sorted(one_line(s, squeeze=False) for s in same))
        raise DecisionError(f"{one_line(sku)!r} could be {named}: give the SKU exactly")
    close = difflib.get_close_matches(sku, every, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(one_line(c, squeeze=False) for c in close)}?"
    raise DecisionError(
        f"unknown SKU {one_line(sku)!r}: it is not in the catalog{hint if close else ''}"
    )


def confirm(lib: Library, photo_id: int, sku: str | None, *, by_score: bool = False) -> Decision:
    """Confirm ``sku``, or by default the best suggestion staff did not reject for the photo;
    a withdrawn SKU is confirmed too, with a ``warning`` that says so."""
    if sku is None:
        ranked = [
            str(r[0])
            for r in lib.db.execute(
                "SELECT sku FROM suggestions WHERE photo_id = ? AND model_version = ? "
                f"AND {CURRENT_SKUS} ORDER BY rank",
                [photo_id, lib.model_version],
            ).fetchall()
        ]
        rejected = rejected_skus(lib, photo_id)
        top = next(((s,) for s in ranked if s not in rejected), None)
        if top is None and ranked:
            raise DecisionError(
                f"photo {photo_id}: every suggestion was rejected ({', '.join(ranked[:5])}"
                f"{', …' if len(ranked) > 5 else ''}); give a SKU, or mark it no match"
            )
        if top is None:
            # Matched under another model: its old suggestions are not this model's, and a
            # blind confirm of one would record a rank this model never gave.
            other = lib.db.execute(
                "SELECT model_version FROM suggestions WHERE photo_id = ? LIMIT 1", [photo_id]
            ).fetchone()
            why = (
                f"was matched with model {other[0]}, not the model in use; match it again "
                "or give a SKU"
                if other
                else "has no suggestions to confirm; give a SKU"
            )
            raise DecisionError(f"photo {photo_id} {why}")
        sku = str(top[0])
    decision = record(lib, photo_id, "confirm", sku, by_score=by_score)
    warning = withdrawn_warning(lib, decision.sku)
    return dataclasses.replace(decision, warning=warning) if warning else decision


def get(lib: Library, decision_id: int) -> Decision:
    row = lib.db.execute(f"SELECT {_COLUMNS} FROM decisions WHERE id = ?", [decision_id]).fetchone()
    if row is None:
        raise DecisionError(f"no decision {decision_id}")
    return _decision(row)


def undone(table: str) -> str:
    """A subquery that finds the undo of ``table``'s decision: through the undo index, one
    lookup per decision (a list of every undo was built by a scan of all decisions, per
    query and per key press)."""
    return (
        "SELECT 1 FROM decisions AS undo_row "
        f"WHERE undo_row.action = 'undo' AND undo_row.undoes = {table}.id"
    )


# A decision is live unless it is an undo or undone; the table must be named ``decisions``.
_LIVE = f"action != 'undo' AND NOT EXISTS ({undone('decisions')})"


def undo(lib: Library, photo_id: int | None = None) -> Decision | None:
    """Cancel the latest live decision (of one photo, or of the library); None if nothing."""
    sql = f"SELECT {_COLUMNS} FROM decisions WHERE {_LIVE}"
    params: list[object] = []
    if photo_id is not None:
        sql += " AND photo_id = ?"
        params.append(photo_id)
    row = lib.db.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
    if row is None:
        return None
    target = _decision(row)
    with transaction(lib.db):
        lib.db["decisions"].insert(
            {
                "photo_id": target.photo_id,
                "action": "undo",
                "sku": target.sku,
                "model_version": lib.model_version,
                "undoes": target.id,
                "decided_at": utcnow(),
            }
        )
    return target


def effective_states(lib: Library, up_to: int | None = None) -> dict[int, Decision]:
    """Per photo, its latest live confirm or no-match decision; with ``up_to``, as they
    stood when decision ``up_to`` was the latest (what a training run read then)."""
    live, params = _LIVE, []
    if up_to is not None:
        undone_then = f"{undone('decisions')} AND undo_row.id <= ?"
        live = f"id <= ? AND action != 'undo' AND NOT EXISTS ({undone_then})"
        params = [up_to, up_to]
    rows = lib.db.execute(
        f"SELECT {_COLUMNS} FROM decisions WHERE {live} AND action IN ('confirm', 'no_match') "
        "ORDER BY id",
        params,
    ).fetchall()
    return {r[1]: _decision(r) for r in rows}


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many photos stand confirmed and how many no match ('confirm'/'no_match' -> n),
    in SQL: the same states as :func:`effective_states`, for a connection of any kind (a
    read-only one for a library another process holds)."""
    rows = conn.execute(
        "SELECT action, count(*) FROM decisions WHERE id IN (SELECT max(id) FROM decisions "
        f"WHERE {_LIVE} AND action IN ('confirm', 'no_match') GROUP BY photo_id) GROUP BY action"
    ).fetchall()
    return {str(a): int(n) for a, n in rows}


def photo_state(lib: Library, photo_id: int) -> PhotoState:
    row = lib.db.execute(
        f"SELECT {_COLUMNS} FROM decisions WHERE {_LIVE} AND photo_id = ? "
        "AND action IN ('confirm', 'no_match') ORDER BY id DESC LIMIT 1",
        [photo_id],
    ).fetchone()
    if row is not None:
        d = _decision(row)
        return PhotoState("confirmed" if d.action == "confirm" else "no_match", d)
    has = lib.db.execute(
        "SELECT 1 FROM suggestions WHERE photo_id = ? LIMIT 1", [photo_id]
    ).fetchone()
    return PhotoState("suggested" if has else "pending", None)
