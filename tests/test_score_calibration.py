"""Scores calibrated on the shop's own decisions (engine.calibration), on the bundled demo's
real photos and on planted logits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine import calibration, memory
from engine.calibration import MIN_DECISIONS, Offer, fit_scale
from engine.db import DB_NAME
from engine.evaluation import read_truth
from engine.library import Library
from engine.matching import SCORE_POOL
from engine.resources import demo_dir


def _planted(scale: float, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose first suggestion is right as often as ``softmax(scale * z)`` says."""
    rng = np.random.default_rng(seed)
    z = -np.sort(rng.exponential(3.0, size=(rows, 5)), axis=1)  # best first, z[0] = 0
    z[:, 0] = 0.0
    first = 1.0 / np.exp(scale * z).sum(axis=1)
    return z, rng.random(rows) < first


@pytest.mark.parametrize("planted", [0.5, 1.0, 1.6])
def test_the_fitted_scale_is_the_one_the_outcomes_were_drawn_with(planted: float) -> None:
    z, right = _planted(planted, 4000, seed=int(planted * 10))
    assert fit_scale(z, right) == pytest.approx(planted, rel=0.15)


def test_the_rest_of_the_pool_gives_back_the_stored_score_at_its_own_scale() -> None:
    """Five suggestions are stored, but a score shares its mass with fifty products: the
    logit standing for the rest must give back the first's stored score at the scale it was
    computed with, and a lower scale must still lower it."""
    rng = np.random.default_rng(3)
    pool = np.sort(rng.normal(0.0, 2.0, 50))[::-1]
    stored_scale = 0.7
    e = np.exp(stored_scale * (pool - pool[0]))
    offer = Offer(1, True, list(pool[:5]), first_score=float(e[0] / e.sum()), scale=stored_scale)
    row = offer.with_rest(50)
    assert [n for _, n in row] == [1, 1, 1, 1, 1, 45]
    z, w = np.array([v for v, _ in row]), np.array([n for _, n in row])

    def first(scale: float) -> float:
        return float(1.0 / (w * np.exp(scale * (z - z[0]))).sum())

    def truly(scale: float) -> float:
        return float(1.0 / np.exp(scale * (pool - pool[0])).sum())

    assert first(stored_scale) == pytest.approx(offer.first_score, rel=1e-9)
    # Elsewhere near the real pool's, and on the same side of the stored score: the rest
    # loses weight as the scale grows (one logit standing for 45 products would gain).
    for scale in (0.3, 1.0, 1.6):
        assert first(scale) == pytest.approx(truly(scale), abs=0.05)
        assert (first(scale) > offer.first_score) == (scale > stored_scale)


@pytest.mark.parametrize("staff", ["overrule", "agree"])
def test_new_scores_are_as_sure_as_the_first_suggestions_proved(
    demo_library: Path, staff: str
) -> None:
    """Staff who keep choosing another product than the first suggestion make the next
    photo's scores less sure; staff who keep confirming it, surer. Either way it is offered
    the same products in the same order, and its suggestions keep the scale they were
    scored with."""
    truth = read_truth(demo_dir() / "truth.csv")
    last, _sku = truth[-1]
    with Library(demo_library) as lib:
        memory.set_enabled(lib, False)  # the same references before and after: same ranking
        assert calibration.score_scale(lib) == 1.0
        assert lib.status().scores == (
            f"the model's own until {MIN_DECISIONS} photos are decided by hand (0 so far)"
        )
        (before,) = lib.match([last], top_k=5)
        for path, _ in truth[:-1]:
            pid = lib.photo_id(path)
            lib.confirm(pid, lib.suggestions(pid)[0 if staff == "agree" else 1].sku)
        scale = calibration.score_scale(lib)
        said = lib.status().scores
        (after,) = lib.match([last], top_k=5)
        stored = lib.db.execute(
            "SELECT DISTINCT scale FROM suggestions WHERE photo_id = ?", [after.photo_id]
        ).fetchall()
    assert len(truth) - 1 >= MIN_DECISIONS
    assert said == f"calibrated on the last 39 photos decided by hand (scale {scale:.2f})"
    assert [s.sku for s in after.suggestions] == [s.sku for s in before.suggestions]
    if staff == "overrule":
        assert scale < 0.5, scale
        assert after.suggestions[0].score < before.suggestions[0].score
    else:
        assert scale > 1.2, scale
        assert after.suggestions[0].score > before.suggestions[0].score
    assert stored == [(scale,)]  # kept beside the scores, for the next fit


def test_accept_confident_and_undone_decisions_teach_the_scores_nothing(demo_library: Path) -> None:
    """A confirmation taken on the score alone would teach the scores to trust themselves;
    an undone one was a mistake; one replaced by another key counts as the last. A no-match
    says the first suggestion was wrong."""
    truth = read_truth(demo_dir() / "truth.csv")
    with Library(demo_library) as lib:
        ids = [lib.photo_id(p) for p, _ in truth]
        first = {pid: lib.suggestions(pid)[0].sku for pid in ids}
        for pid in ids[:30]:
            lib.confirm(pid, by_score=True)
        assert len(calibration.decided_offers(lib.db.conn)[2]) == 0
        assert calibration.score_scale(lib) == 1.0
        right_one, wrong_one, none_one, undone_one, changed_one = ids[30:35]
        lib.confirm(right_one, first[right_one])
        lib.confirm(wrong_one, next(s.sku for s in lib.suggestions(wrong_one)[1:]))
        lib.no_match(none_one)
        lib.confirm(undone_one)
        lib.undo(undone_one)
        lib.confirm(changed_one, first[changed_one])  # then another key: the last counts
        lib.confirm(changed_one, next(s.sku for s in lib.suggestions(changed_one)[1:]))
        logits, weights, right = calibration.decided_offers(lib.db.conn)
    assert right.tolist() == [True, False, False, False]
    assert logits.shape[0] == 4 and np.all(logits[:, 0] >= logits[:, 1])
    # The pool beyond the five stored: 45 of the demo's 81 products.
    assert np.all(weights[:, :5] == 1) and np.all(weights[:, 5] == SCORE_POOL - 5)


def test_a_library_from_before_calibration_keeps_its_decisions_and_scores(
    demo_library: Path,
) -> None:
    """Schema 10 adds the columns calibration reads; rows from before count as decided by
    hand and scored at the model's own temperature, which is what they were."""
    path = demo_library
    truth = read_truth(demo_dir() / "truth.csv")
    with Library(path) as lib:
        for p, sku in truth[:5]:
            lib.confirm(lib.photo_id(p), sku)
        scores = lib.db.execute("SELECT score FROM suggestions ORDER BY rowid").fetchall()
    with sqlite3.connect(path / DB_NAME) as conn:
        conn.executescript(
            """
            ALTER TABLE decisions DROP COLUMN by_score;
            ALTER TABLE suggestions DROP COLUMN scale;
            PRAGMA user_version = 9;
            """
        )
    conn.close()
    with Library(path) as lib:
        assert lib.db.execute("SELECT DISTINCT by_score FROM decisions").fetchall() == [(0,)]
        assert lib.db.execute("SELECT DISTINCT scale FROM suggestions").fetchall() == [(1.0,)]
        assert lib.db.execute("SELECT score FROM suggestions ORDER BY rowid").fetchall() == scores
        assert len(calibration.decided_offers(lib.db.conn)[2]) == 5


def test_photos_still_waiting_are_scored_again_as_if_matched_now(demo_library: Path) -> None:
    """A delivery matched in one go before the decisions calibrated anything is scored at
    the model's own temperature: once they have, its photos still waiting get the scores a
    match now would give (the same products, in the same order), stored with their scale;
    decided photos keep what they were decided on."""
    truth = read_truth(demo_dir() / "truth.csv")
    with Library(demo_library) as lib:
        memory.set_enabled(lib, False)  # the same references: a match now offers the same
        ids = [lib.photo_id(p) for p, _ in truth]
        for pid in ids[:MIN_DECISIONS]:
            lib.confirm(pid, lib.suggestions(pid)[1].sku)  # staff overrule the first
        waiting = ids[MIN_DECISIONS:]
        before = {pid: lib.suggestions(pid) for pid in waiting}
        decided = lib.suggestions(ids[0])
        rescored = lib.rescore([ids[0], *waiting])
        scale = calibration.score_scale(lib)
        assert scale < 0.5
        assert sorted(rescored) == sorted(waiting)
        for pid in waiting:
            now = lib.suggestions(pid)
            assert [s.sku for s in now] == [s.sku for s in before[pid]]
            assert {s.sku: s.score for s in now} == pytest.approx(rescored[pid])
            assert now[0].score < before[pid][0].score
        assert lib.suggestions(ids[0]) == decided
        assert lib.rescore(waiting) == {}  # scored at the scale in use: nothing to do
        stored = lib.db.execute(
            "SELECT DISTINCT scale FROM suggestions WHERE photo_id = ?", [waiting[0]]
        ).fetchall()
        assert stored == [(scale,)]
        # What a match now gives, within what five stored suggestions can tell of fifty.
        for (path, _), pid in zip(truth[MIN_DECISIONS:], waiting, strict=True):
            (m,) = lib.match([path], top_k=5)
            assert [s.sku for s in m.suggestions] == list(rescored[pid])
            assert [s.score for s in m.suggestions] == pytest.approx(
                list(rescored[pid].values()), abs=0.05
            )
