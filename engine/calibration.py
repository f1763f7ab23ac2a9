"""Scores that mean what they say in this shop: a scale fitted on the staff's own decisions.

A model's softmax temperature is fitted once, on photos whose product the library already
knows from other photos (the gate's held-out confirmations). A delivery is reviewed
differently: its first shot of a product meets only the supplier's picture and whatever
look-alike the shop photographed before, and there the scores were too sure of themselves.
On grocery's 296 photos reviewed in order with instant memory, 171 first suggestions scored
95% or more and 9% of them were wrong; "Accept confident" at 80% would have confirmed 30
wrong photos, each a wrong stock line and a wrong training label.

Each decision staff make is the label that measures this: what the photo was offered when it
was decided (its stored suggestions) and whether the first one was right. The scale on the
logits that best predicts those outcomes (least log loss of "the first suggestion is right")
is what scores are computed with. It changes no ranking, only how sure a score says it is.
Confirmations by "Accept confident" are left out: they were taken on the score itself, so
counting them would teach the scale to trust itself more.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from engine.db import select_in, transaction
from engine.decisions import undone

if TYPE_CHECKING:
    from engine.library import Library

MIN_DECISIONS = 30  # fewer: the model's own temperature, unscaled
RECENT = 500  # the latest decisions fitted: the shop's photos and catalog drift
REFIT_EVERY = 10  # decisions between two fits
# Scales tried: a score may become far less sure (a look-alike shelf) or somewhat surer.
GRID = np.geomspace(0.25, 2.0, 64)


def fit_scale(
    logits: np.ndarray, first_right: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """The scale ``c`` minimising the log loss of "the first suggestion is right" when the
    first's score is ``softmax(c * logits)[0]``; rows are each decision's offered logits,
    best first (padded with -inf), and ``weights`` how many products each logit stands for
    (1 for a stored suggestion)."""
    z = logits - logits[:, :1]
    z = np.where(np.isfinite(z), z, -np.inf)
    w = np.ones_like(z) if weights is None else weights
    best_loss, best = np.inf, 1.0
    for c in GRID:
        first = 1.0 / (w * np.exp(c * z)).sum(axis=1)
        p = np.clip(first, 1e-9, 1 - 1e-9)
        loss = -np.where(first_right, np.log(p), np.log1p(-p)).mean()
        if loss < best_loss:
            best_loss, best = loss, float(c)
    return best


def score_scale(lib: Library) -> float:
    """The scale scores are computed with now (1.0 until ``MIN_DECISIONS`` decisions count).

    Kept on the library and fitted again once ``REFIT_EVERY`` decisions were added (read by
    their newest id, microseconds per match): a fit reads up to ``RECENT`` decisions."""
    newest = int(lib.db.execute("SELECT coalesce(max(id), 0) FROM decisions").fetchone()[0])
    cached = lib.score_scale_cache
    if cached is not None:
        since, scale, counted = cached
        # Until the first fit, each decision may be the one that allows it.
        if 0 <= newest - since < (REFIT_EVERY if counted >= MIN_DECISIONS else 1):
            return scale
    scale, counted = measured_scale(lib.db.conn)
    lib.score_scale_cache = (newest, scale, counted)
    return scale


def measured_scale(conn: sqlite3.Connection) -> tuple[float, int]:
    """The scale the library's decisions call for, and how many decisions it rests on."""
    logits, weights, right = decided_offers(conn)
    if len(right) < MIN_DECISIONS:
        return 1.0, len(right)
    return fit_scale(logits, right, weights), len(right)


def described(conn: sqlite3.Connection) -> str:
    """How scores are calibrated, in a line for the library's status."""
    scale, counted = measured_scale(conn)
    if counted < MIN_DECISIONS:
        return (
            f"the model's own until {MIN_DECISIONS} photos are decided by hand ({counted} so far)"
        )
    return f"calibrated on the last {counted} photos decided by hand (scale {scale:.2f})"


def decided_offers(
    conn: sqlite3.Connection, limit: int = RECENT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The latest ``limit`` photos decided by hand: the logits they were offered then (the
    suggestions stored before the decision, each with its model's temperature and the local
    features' inlier bonus) and whether the first one was what staff chose. A no-match says
    the first was wrong; a photo found by search, offered nothing, tells nothing.

    Only five suggestions are stored, but a score shares its mass with every product of the
    pool: the first one's stored score and scale give that rest back, as the pool's other
    products at one logit each (fitting ``fit_scale``'s ``weights``)."""
    rows = conn.execute(
        f"""
        SELECT d.id, d.photo_id, d.action, d.rank, d.model_version,
            s.rank, s.sku, s.similarity, s.inliers, s.score, s.scale
        FROM (
            SELECT id, photo_id, action, rank, model_version, decided_at FROM decisions
            WHERE action IN ('confirm', 'no_match') AND by_score = 0
              AND NOT EXISTS ({undone("decisions")})
            ORDER BY id DESC LIMIT ?
        ) AS d
        JOIN suggestions s ON s.photo_id = d.photo_id AND s.model_version = d.model_version
            AND s.created_at <= d.decided_at
        ORDER BY d.id, s.rank
        """,
        [limit],
    ).fetchall()
    temperatures = _temperatures(conn, {str(r[4]) for r in rows})
    pool = _pool(conn)
    offers: dict[int, Offer] = {}  # by photo: a decision replaced by another one counts once
    for decision, photo, action, rank, version, *suggestion in rows:
        t = temperatures.get(str(version))
        if t is None:  # the model's row is gone (removed): its temperature is unknown
            continue
        offer = offers.get(int(photo))
        if offer is None or offer.decision != decision:  # rows come by decision id
            offer = offers[int(photo)] = Offer(int(decision), action == "confirm" and rank == 1)
        offer.add(*suggestion, temperature=t)
    logits, weights = _padded([o.with_rest(pool) for o in offers.values()])
    return logits, weights, np.array([o.first_right for o in offers.values()], dtype=bool)


@dataclass
class Offer:
    """One decided photo's stored suggestions, as calibration reads them."""

    decision: int
    first_right: bool
    logits: list[float] = field(default_factory=list)  # at scale 1, by rank
    skus: list[str] = field(default_factory=list)  # by rank
    first_score: float = 0.0  # as stored, at ``scale``
    scale: float = 1.0

    def add(
        self,
        rank: int,
        sku: str,
        similarity: float,
        inliers: int,
        score: float,
        scale: float,
        *,
        temperature: float,
    ) -> None:
        """One stored suggestion (a ``suggestions`` row), in rank order: its logit at scale
        1 as matching ranked it (the local features' inlier bonus included)."""
        from engine.local_features.rerank import bonus

        self.logits.append(float(similarity) / temperature + bonus(int(inliers)))
        self.skus.append(str(sku))
        if rank == 1:
            self.first_score, self.scale = float(score), float(scale)

    def with_rest(self, pool: int) -> list[tuple[float, int]]:
        """(logit, products it stands for), best first: those stored, then the rest of the
        ``pool`` at the one logit that gives back the first's stored score at its scale.
        Alike, they lose weight as the scale grows, as the real ones do (one product standing
        for them all would gain)."""
        z = sorted(self.logits, reverse=True)  # the inlier bonus may reorder stored ranks
        out = [(v, 1) for v in z]
        others = pool - len(z)
        if not z or others <= 0 or not 0.0 < self.first_score <= 1.0:
            return out
        c = max(self.scale, 1e-6)
        rest = 1.0 / self.first_score - float(np.exp(c * (np.array(z) - z[0])).sum())
        if rest <= 1e-12:
            return out
        return [*out, (z[0] + float(np.log(rest / others)) / c, others)]

    def scores_at(self, scale: float, pool: int) -> list[float]:
        """The stored suggestions' scores, by rank, had they been scored at ``scale``."""
        rows = self.with_rest(pool)
        top = rows[0][0]
        total = sum(n * np.exp(scale * (z - top)) for z, n in rows)
        return [float(np.exp(scale * (z - top)) / total) for z in self.logits]


def rescore(lib: Library, photo_ids: Sequence[int]) -> dict[int, dict[str, float]]:
    """Photos still to decide, scored at the scale in use now when their stored suggestions
    were scored at another: their new scores by SKU, also stored (with the scale).

    Why: a delivery is matched in one go, often before the shop's decisions have calibrated
    anything; "Accept confident" and the cards would go on showing the model's own, too sure,
    scores for the photos waiting while the staff's decisions said better."""
    version = lib.model_version
    scale = score_scale(lib)
    t = _temperatures(lib.db.conn, {version}).get(version)
    if t is None:
        return {}
    pool = _pool(lib.db.conn)
    ids = list(dict.fromkeys(photo_ids))
    decided = {
        int(r[0])
        for r in select_in(
            lib.db,
            "SELECT photo_id FROM decisions WHERE action IN ('confirm', 'no_match') "
            f"AND NOT EXISTS ({undone('decisions')}) AND photo_id IN ({{marks}})",
            ids,
        )
    }
    offers: dict[int, Offer] = {}
    for photo, *suggestion in select_in(
        lib.db,
        "SELECT photo_id, rank, sku, similarity, inliers, score, scale FROM suggestions "
        "WHERE model_version = ? AND photo_id IN ({marks}) ORDER BY photo_id, rank",
        ids,
        prefix=[version],
    ):
        if int(photo) not in decided:
            offers.setdefault(int(photo), Offer(0, False)).add(*suggestion, temperature=t)
    out: dict[int, dict[str, float]] = {}
    for photo, offer in offers.items():
        if abs(offer.scale - scale) > 1e-9 and offer.first_score > 0:
            out[photo] = dict(zip(offer.skus, offer.scores_at(scale, pool), strict=True))
    if out:
        with transaction(lib.db):
            lib.db.conn.executemany(
                "UPDATE suggestions SET score = ?, scale = ? "
                "WHERE photo_id = ? AND model_version = ? AND sku = ?",
                [
                    (score, scale, photo, version, sku)
                    for photo, scores in out.items()
                    for sku, score in scores.items()
                ],
            )
    return out


def _pool(conn: sqlite3.Connection) -> int:
    """How many products a score shares its mass with (matching's softmax pool)."""
    from engine.matching import SCORE_POOL

    return min(SCORE_POOL, int(conn.execute("SELECT count(*) FROM products").fetchone()[0]))


def _temperatures(conn: sqlite3.Connection, versions: set[str]) -> dict[str, float]:
    """Each model version's softmax temperature, from its stored manifest (a removed
    model's is missing)."""
    out = {}
    for version in versions:
        row = conn.execute("SELECT manifest FROM models WHERE version = ?", [version]).fetchone()
        try:
            out[version] = max(float(json.loads(row[0])["temperature"]), 1e-6)
        except (TypeError, KeyError, ValueError):
            continue
    return out


def _padded(rows: Sequence[list[tuple[float, int]]]) -> tuple[np.ndarray, np.ndarray]:
    """Logits (-inf past a row's end) and the products each stands for (0 there)."""
    width = max((len(r) for r in rows), default=1)
    logits = np.full((len(rows), width), -np.inf)
    weights = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        logits[i, : len(row)] = [z for z, _ in row]
        weights[i, : len(row)] = [n for _, n in row]
    return logits, weights
