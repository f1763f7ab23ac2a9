"""Read-only views of a library for user interfaces: thumbnails, queues, learning figures.

The desktop app calls these (on its engine worker thread) instead of writing SQL itself, so
the schema stays the engine's business.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.db import MAX_SQLITE_INT, select_in
from engine.decisions import _LIVE, effective_states, undone
from engine.training.options import MIN_HELDOUT
from engine.wording import count

if TYPE_CHECKING:
    from engine.decisions import Decision
    from engine.library import Library


@dataclass(frozen=True)
class PhotoRecord:
    id: int
    path: Path
    sha256: str
    thumb: Path


# How a stored comparison names the catalog self-check's photos (the plural is irregular).
CATALOG_CHECK_NOUNS = ("simulated photo of the catalog", "simulated photos of the catalog")


@dataclass(frozen=True)
class ModelVersion:
    version: str
    architecture: str
    parent_version: str | None
    created_at: str
    active: bool
    metrics: dict[str, object]  # as stored by the learning run (engine.learning.finish)
    removable: bool = False  # neither active nor the bundled fallback (Library.remove_model)

    @property
    def measured_top1(self) -> float | None:
        """Top-1 on held-out confirmed photos, if there were enough of them to mean something
        (a handful is shown only in the comparison, with its count)."""
        top1 = self.metrics.get("top1")
        held = (self._gate().get("candidate") or {}).get("heldout") or {}
        if not isinstance(top1, int | float) or held.get("n", 0) < MIN_HELDOUT:
            return None
        return float(top1)

    def _gate(self) -> dict[str, Any]:
        """The gate's stored comparison (GateDecision.to_dict), or {} if it has none."""
        gate = self.metrics.get("gate")
        return gate if isinstance(gate, dict) else {}

    @property
    def trained_here(self) -> bool:
        """Fine-tuned by a learning run in this library (not bundled, not installed by hand)."""
        return isinstance(self.metrics.get("data"), dict)

    @property
    def state(self) -> str:
        """What became of this version, in a few words for the version list."""
        if self.active:
            return "active"
        return _STATES.get(str(self.metrics.get("status")), "")

    def comparison(self) -> str:
        """The gate's stored comparison in a few lines (a tooltip's worth); '' for a version
        that was never compared (the bundled one, one installed by hand)."""
        gate = self._gate()
        if not gate:
            return ""
        cand, act = gate.get("candidate") or {}, gate.get("active") or {}
        lines = [f"Checked against {act.get('version') or 'the model active then'}:"]
        for key, what in (
            ("heldout", ("held-out confirmed photo",)),
            ("catalog_check", CATALOG_CHECK_NOUNS),
        ):
            c, a = cand.get(key) or {}, act.get(key) or {}
            if c.get("n") and a:
                lines.append(
                    f"  {count(c['n'], *what)}: top-1 {c['top1']:.0%} against {a['top1']:.0%}, "
                    f"MRR {c['mrr']:.3f} against {a['mrr']:.3f}"
                )
        lines.append(f"Verdict: {verdict(gate)}.")
        return "\n".join(lines)


# The measure each criterion names, as the gate words it (engine.training.gate.CRITERIA;
# not imported: that module loads the matching stack).
CRITERIA = {
    "heldout_mrr": "MRR on held-out confirmed photos",
    "catalog_check_mrr": "MRR on simulated photos of the catalog",
}


def verdict(gate: dict[str, Any]) -> str:
    """The gate's stored verdict, as the current release words it. Versions trained before
    the verdicts named their measure in words stored 'not better: catalog_check_mrr 0.694 vs
    active 0.709' (or 'better: MRR on ... against ...'): their sentence is made again from
    the stored criterion and figures, as ``engine.training.gate.decide`` words it now."""
    reason = str(gate.get("reason") or "not recorded")
    if not any(old in reason for old in (*CRITERIA, " vs ", "better: ")):
        return reason  # worded by the current release (or nothing to go on)
    criterion = str(gate.get("criterion") or "")
    key = criterion.removesuffix("_mrr")
    cand, act = gate.get("candidate") or {}, gate.get("active") or {}
    try:
        c, a = float(cand[key]["mrr"]), float(act[key]["mrr"])
        name = CRITERIA[criterion]
    except (KeyError, TypeError, ValueError):  # figures not stored: only the names change
        for old, words in CRITERIA.items():
            reason = reason.replace(old, words)
        return reason
    figures = f"{name} {c:.3f} against {a:.3f} for the active model"
    if gate.get("accept"):
        return f"better ({figures})"
    if c <= a:
        return f"not better ({figures})"
    if criterion == "catalog_check_mrr":
        n = int((cand.get("heldout") or {}).get("n") or 0)
        return (
            f"only {count(n, 'held-out confirmation')}, {MIN_HELDOUT} needed to prove a gain "
            f"on real photos ({figures})"
        )
    try:
        drop = float(act["catalog_check"]["top1"]) - float(cand["catalog_check"]["top1"])
    except (KeyError, TypeError, ValueError):
        return f"refused ({figures})"
    return f"top-1 on simulated photos of the catalog drops by {drop:.3f} ({figures})"


_STATES = {  # metrics["status"] of a version that is not active now
    "active": "passed the check",  # activated once, switched away from since
    "accepted": "passed the check",  # trained with --no-activate
    "refused": "refused by the check",
    "evaluating": "check not finished",  # running now, or the app stopped mid-check
    "cancelled": "check cancelled",
    "failed": "check failed",
}


@dataclass(frozen=True)
class LearningStats:
    confirmed: int
    no_match: int
    decisions: int
    top1_hits: int  # confirmations where the confirmed SKU was the top suggestion
    top5_hits: int
    searched: int  # confirmations of a SKU that was not among the suggestions
    remembered: int  # confirmed photos serving as reference images (instant memory)
    catalog_images: int  # supplier images (what training simulates phone photos of)
    instant_memory: bool
    model_version: str
    versions: list[ModelVersion]
    # Confirmed photos the next run would hold out to prove its model (the gate needs
    # MIN_HELDOUT): known before a run, so the app can say a run cannot be adopted yet.
    heldout: int = 0
    # Confirmed photos the active model's run did not read as confirmed to that product,
    # or None when its run did not record which it read (see _not_learnt).
    not_learnt: int | None = None

    @property
    def new_confirmations(self) -> int:
        """Confirmations since the active model was trained (all of them for a model not
        fine-tuned here): how much a new fine-tuning run would have to learn from."""
        if self.not_learnt is not None:
            return self.not_learnt
        active = next((v for v in self.versions if v.active), None)
        data = active.metrics.get("data") if active is not None else None
        if not isinstance(data, dict):
            return self.confirmed
        # Older runs did not store the count: their training and held-out photos.
        seen = data.get("confirmations", data.get("photos", 0) + data.get("heldout", 0))
        return max(0, self.confirmed - int(seen))


def photo_records(lib: Library, photo_ids: list[int]) -> dict[int, PhotoRecord]:
    sql = "SELECT id, path, sha256 FROM photos WHERE id IN ({marks})"
    return {
        int(pid): PhotoRecord(int(pid), Path(path), sha, lib.thumbnail(sha))
        for pid, path, sha in select_in(lib.db, sql, photo_ids)
    }


def image_thumbs(lib: Library, image_ids: list[int]) -> dict[int, Path]:
    """Thumbnail file of each catalog image id (for suggestion cards)."""
    sql = "SELECT id, sha256 FROM catalog_images WHERE id IN ({marks})"
    return {int(iid): lib.thumbnail(sha) for iid, sha in select_in(lib.db, sql, image_ids)}


def sku_thumbs(lib: Library, skus: list[str]) -> dict[str, Path]:
    """First catalog image thumbnail per SKU (search results, a confirmed product's card):
    the supplier's picture, never a staff photo instant memory kept, unless it has none."""
    sql = (
        "SELECT sku, sha256 FROM catalog_images WHERE sku IN ({marks}) "
        "ORDER BY origin = 'catalog', id DESC"
    )
    # Staff photos first, then the supplier's, each newest first: the last written wins, so
    # the oldest supplier picture (first imported), else the oldest staff photo.
    return {str(sku): lib.thumbnail(sha) for sku, sha in select_in(lib.db, sql, skus)}


_UNDECIDED = (
    "FROM photos WHERE id > ? AND id <= ? AND id NOT IN (SELECT photo_id FROM decisions "
    f"WHERE {_LIVE} AND action IN ('confirm', 'no_match'))"
)


def undecided_photos(
    lib: Library, limit: int = 2000, offset: int = 0, after: int = 0, upto: int | None = None
) -> list[PhotoRecord]:
    """Photos matched earlier but never decided, oldest first: the queue to resume on
    opening a library. Only ids above ``after`` (a page already listed) and up to ``upto``
    (the photos there were when the library opened: not those added since).

    One page in SQL (a photo is decided when it has a live confirm or no-match, as in
    ``effective_states``), so a library with 10k photos does not load them all to show 2000.
    """
    end = MAX_SQLITE_INT if upto is None else upto
    rows = lib.db.execute(
        f"SELECT id, path, sha256 {_UNDECIDED} ORDER BY id LIMIT ? OFFSET ?",
        [after, end, max(0, limit), max(0, offset)],
    ).fetchall()
    return [PhotoRecord(int(pid), Path(path), sha, lib.thumbnail(sha)) for pid, path, sha in rows]


def undecided_count(lib: Library, after: int = 0, upto: int | None = None) -> int:
    """How many photos :func:`undecided_photos` would list with no limit."""
    end = MAX_SQLITE_INT if upto is None else upto
    return int(lib.db.execute(f"SELECT count(*) {_UNDECIDED}", [after, end]).fetchone()[0])


def last_photo_id(lib: Library) -> int:
    return int(lib.db.execute("SELECT coalesce(max(id), 0) FROM photos").fetchone()[0])


def confirmed_photos(lib: Library, sku: str, limit: int = 60) -> list[PhotoRecord]:
    return newest_confirmed_photos(lib, sku, limit)[0]


def newest_confirmed_photos(
    lib: Library, sku: str, limit: int = 60
) -> tuple[list[PhotoRecord], int]:
    """The newest ``limit`` photos confirmed to ``sku`` and how many there are in all: a list
    capped at 60 must not be read as the product's total (it was, at 400)."""
    # By the decision now in force (ids grow with time): a photo confirmed again today is new.
    # Read by the product's own confirmations, not every decision of the library (review 48).
    ids = [
        int(r[0])
        for r in lib.db.execute(
            f"SELECT photo_id FROM decisions WHERE action = 'confirm' AND sku = ? AND {_LIVE} "
            "AND NOT EXISTS (SELECT 1 FROM decisions AS later WHERE later.photo_id = "
            "decisions.photo_id AND later.id > decisions.id AND later.action IN "
            f"('confirm', 'no_match') AND NOT EXISTS ({undone('later')})) ORDER BY id",
            [sku],
        )
    ]
    newest = ids[-limit:] if limit > 0 else []
    records = photo_records(lib, newest)
    return [records[i] for i in newest if i in records], len(ids)


def distinct_values(lib: Library, column: str) -> list[str]:
    """A filter's values as people read them: 'Épicerie' among the E's, 'bakery' beside
    'Bakery' (the stored folded key orders them, the value itself breaks ties)."""
    if column not in ("category", "supplier"):
        raise ValueError(f"not a filter column: {column}")
    return [
        r[0]
        for r in lib.db.execute(
            f"SELECT {column} FROM products WHERE {column} != '' "
            f"GROUP BY {column} ORDER BY MIN({column}_key), {column}"
        )
    ]


def model_versions(lib: Library) -> list[ModelVersion]:
    return [
        ModelVersion(
            version=str(m["version"]),
            architecture=str(m["architecture"]),
            parent_version=m.get("parent_version"),  # type: ignore[arg-type]
            created_at=str(m["created_at"]),
            active=bool(m["active"]),
            metrics=m["metrics"] if isinstance(m["metrics"], dict) else {},
            removable=lib.removal_problem(str(m["version"])) is None,
        )
        for m in lib.models()
    ]


def learning_stats(lib: Library) -> LearningStats:
    now = effective_states(lib)  # once: Library.status() would read them again
    states = now.values()
    confirms = [d for d in states if d.action == "confirm"]
    versions = model_versions(lib)
    by_origin = dict(
        lib.db.execute("SELECT origin, count(*) FROM catalog_images GROUP BY origin").fetchall()
    )
    return LearningStats(
        confirmed=len(confirms),
        no_match=sum(1 for d in states if d.action == "no_match"),
        decisions=int(lib.db.execute("SELECT count(*) FROM decisions").fetchone()[0]),
        top1_hits=sum(1 for d in confirms if d.rank == 1),
        top5_hits=sum(1 for d in confirms if d.rank is not None and d.rank <= 5),
        searched=sum(1 for d in confirms if d.rank is None),
        remembered=int(by_origin.get("confirmed", 0)),
        catalog_images=int(by_origin.get("catalog", 0)),
        instant_memory=lib.instant_memory,
        model_version=lib.model_version,
        versions=versions,
        heldout=_heldout(lib, confirms),
        not_learnt=_not_learnt(lib, versions, now),
    )


def _not_learnt(lib: Library, versions: list[ModelVersion], now: dict[int, Decision]) -> int | None:
    """Photos confirmed now that the active model's run did not read as confirmed to that
    product (confirmed, or confirmed otherwise, after it read its data): counted by photo,
    as a difference of two counts let a confirmation taken back meanwhile hide a new one.
    None for a run that did not record its last decision (older runs, models not trained
    here): the counts are compared then."""
    active = next((v for v in versions if v.active), None)
    data = active.metrics.get("data") if active is not None else None
    up_to = data.get("decided_up_to") if isinstance(data, dict) else None
    if not isinstance(up_to, int):
        return None
    then = effective_states(lib, up_to=up_to)
    read = {pid: d.sku for pid, d in then.items() if d.action == "confirm"}
    return sum(1 for pid, d in now.items() if d.action == "confirm" and read.get(pid) != d.sku)


def _heldout(lib: Library, confirms: list[Decision]) -> int:
    """What training.data.collect would hold out, from the decisions alone (no file read)."""
    from engine.training.data import heldout_count

    withdrawn = {
        sku for (sku,) in lib.db.execute("SELECT sku FROM products WHERE withdrawn_at IS NOT NULL")
    }
    per_sku = Counter(d.sku for d in confirms if d.sku and d.sku not in withdrawn)
    return heldout_count(per_sku.values())
