"""The review session: queue photos, match them in chunks, record decisions, undo.

Matching is split into chunks of CHUNK photos at background priority, so a decision (which
runs at interactive priority on the same engine thread) waits for one chunk at most. The UI
updates optimistically on a keypress and reconciles with the engine's answer, so reviewing
feels instant; a failed decision is rolled back and reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QWidget

from desktop_app.catalog_browser import withdrawn_note
from desktop_app.dialogs import ask
from desktop_app.previews import PreviewLoader
from desktop_app.queue_view import QueueItem, QueueModel
from desktop_app.review import ReviewPage
from desktop_app.worker import EngineWorker, Priority, TaskContext, TaskError
from engine import decisions, matching, overview
from engine.db import select_in
from engine.matching import PhotoMatch, Suggestion, expand_paths
from engine.progress import CancelToken
from engine.sheet import product_price
from engine.wording import are, count, were

TOP_K = 5
# Photos per matching task: bounds how long a keypress (undo, search, a catalog page) waits
# on the engine thread. With a 3,000-product catalog a chunk of 8 took 2.6-4.5 s on a busy
# 2-core machine, of 4 1.5-2.4 s, for 8-12% more matching time in all (each engine call has
# fixed costs: the local-feature index check, one encoder run); 2 cost ~30% (review 28).
CHUNK = 4
PREVIEW_SIDE = 112
PHOTO_SIDE = 1600
# Photos from last time listed at once: the list holds a preview of each (a year's backlog of
# skipped photos would take hundreds of MB); the next page follows once these are decided.
WAITING_PAGE = 2000
Absent = tuple[list[Path], list[Path]]  # remembered (unmatched, stopped) photos not found now

STOPPED_NOTE = (
    "Not matched (stopped): add the photo again to match it, or press Delete to take it off "
    "the list"
)

STOPPED_KEY_NOTE = "Not matched: matching was stopped; add the photo again to match it"

REMATCH_NOTE = "Matching again with the new model…"
# Sent back to matching with no model switch (Ctrl+Z after an import withdrew its products).
AGAIN_NOTE = "Matching again…"
# Photos searched again after one decision, at most: those whose suggestions the new
# reference changes, nearest on the list first (bench/bench_review_in_order.py).
SEARCH_AGAIN = 8
# Photos a decision checks for that, nearest on the list first: the check reads their
# vectors, 10-20 ms for 300 (a year-old library, 20,000 products), so not all 2,000 listed.
SEARCH_AGAIN_CHECKED = 500
# A number key or Enter this soon after the photo's suggestions changed on screen is not
# taken: it was meant for the suggestions shown before.
SETTLE_S = 0.5
UPDATED_NOTE = "Suggestions updated with what you confirmed"
SETTLE_NOTE = "The suggestions just changed: check them, then press again"

ErrorHandler = Callable[[str, TaskError], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatchedPhoto:
    """A match result plus what the UI needs to show it, gathered on the engine thread."""

    path: Path
    photo_id: int | None
    suggestions: list[Suggestion] = field(default_factory=list)
    error: str | None = None
    duplicate_of: str | None = None
    status: str = "pending"
    decided_sku: str | None = None
    decided_name: str = ""
    thumb: Path | None = None
    suggestion_thumbs: dict[int, Path] = field(default_factory=dict)
    # Matched with this model, but staff rejected every suggestion: nothing left to offer,
    # and matching again would only find the same products.
    all_rejected: bool = False
    decided_card: Suggestion | None = None  # StateUpdate.card
    decided_thumb: Path | None = None
    decided_from_search: bool = False

    @property
    def needs_matching(self) -> bool:
        """Undecided without suggestions of the model in use (matched under another model,
        or its products withdrawn since): only matching again gives it suggestions."""
        return self.status == "suggested" and not self.suggestions and not self.all_rejected


@dataclass(frozen=True)
class StateUpdate:
    photo_id: int
    status: str
    decided_sku: str | None
    decided_name: str
    # The confirmed product as a card, with its picture's thumbnail: shown when no
    # suggestion on show is that product (found by search; another model's suggestions).
    card: Suggestion | None = None
    card_thumb: Path | None = None
    # Recorded with no rank (none of the photo's suggestions): found by search.
    from_search: bool = False
    # Photos on the list whose suggestions the decision outdated (instant memory): searched
    # again in the background (ReviewSession._search_again).
    search_again: tuple[int, ...] = ()
    # Photos on the list scored again, by SKU, since the decision changed how sure scores
    # are (engine.calibration): their cards and "Accept confident" say so at once.
    rescored: tuple[tuple[int, tuple[tuple[str, float], ...]], ...] = ()


def _product_card(lib, product: dict[str, object]) -> tuple[Suggestion, Path | None]:  # type: ignore[no-untyped-def]
    """Engine thread: a product as a card, as a search result shows it (its name marked if
    it was withdrawn, its supplier picture), with no rank and no score."""
    sku = str(product["sku"])
    card = Suggestion(
        rank=0,
        sku=sku,
        similarity=0.0,
        score=0.0,
        image_id=None,
        name=str(withdrawn_note(product).get("name") or ""),
        category=str(product.get("category") or ""),
        supplier=str(product.get("supplier") or ""),
        price=product_price(product),
    )
    return card, overview.sku_thumbs(lib, [sku]).get(sku)


def _state(lib, photo_id: int) -> StateUpdate:  # type: ignore[no-untyped-def]
    st = lib.photo_state(photo_id)
    confirmed = st.decision if st.decision is not None and st.status == "confirmed" else None
    sku = confirmed.sku if confirmed is not None else None
    product = lib.product(sku) if sku else None
    name = str((product or {}).get("name") or "")
    if confirmed is None or product is None:
        return StateUpdate(photo_id, st.status, sku, name)
    card, thumb = _product_card(lib, product)
    return StateUpdate(photo_id, st.status, sku, name, card, thumb, confirmed.rank is None)


def _outdated(lib, st: StateUpdate, waiting: Sequence[int], mark: int) -> StateUpdate:  # type: ignore[no-untyped-def]
    """Engine thread: ``st`` with the photos of ``waiting`` whose suggestions the decision
    outdated (instant memory added or took away a reference since ``mark``), and those it
    scored again (the scores' calibration changed)."""
    again = lib.outdated_suggestions(waiting, mark, SEARCH_AGAIN)
    rescored = tuple((pid, tuple(scores.items())) for pid, scores in lib.rescore(waiting).items())
    return replace(st, search_again=tuple(again), rescored=rescored)


@dataclass(frozen=True)
class Waiting:
    """A page of photos from last time, with their stored matches: the highest photo id
    listed, how many undecided photos from last time come after it, and the last photo id
    of last time (photos added since are not from last time, even if taken off the list)."""

    photos: list[MatchedPhoto]
    after: int
    left: int
    upto: int


def _waiting(lib, after: int, upto: int | None) -> Waiting:  # type: ignore[no-untyped-def]
    """Engine thread: the next page of undecided photos after photo id ``after`` (up to
    ``upto``; None: the first page, up to the last photo there is now)."""
    end = overview.last_photo_id(lib) if upto is None else upto
    records = overview.undecided_photos(lib, limit=WAITING_PAGE, after=after, upto=end)
    last = records[-1].id if records else after
    photos = [stored_match(lib, rec) for rec in records]
    return Waiting(photos, last, overview.undecided_count(lib, after=last, upto=end), end)


def stored_match(lib, rec: overview.PhotoRecord) -> MatchedPhoto:  # type: ignore[no-untyped-def]
    """Engine thread: a photo matched before, with its stored suggestions (nothing encoded)."""
    return describe_match(lib, PhotoMatch(rec.path, rec.id, lib.suggestions(rec.id)))


def describe_match(lib, m: PhotoMatch) -> MatchedPhoto:  # type: ignore[no-untyped-def]
    """Engine thread: enrich a PhotoMatch with state and thumbnail paths."""
    if m.photo_id is None:
        return MatchedPhoto(m.path, None, error=m.error or "unknown problem", status="error")
    st = _state(lib, m.photo_id)
    rec = overview.photo_records(lib, [m.photo_id]).get(m.photo_id)
    # A product staff rejected for this photo (on the command line: the window has no
    # reject key) is not offered again: Enter confirmed it. Cut to TOP_K after that, so a
    # photo matched with more keeps offering the ones not rejected.
    rejected = decisions.rejected_skus(lib, m.photo_id)
    suggestions = [s for s in m.suggestions if s.sku not in rejected][:TOP_K]
    thumbs = overview.image_thumbs(lib, [s.image_id for s in suggestions if s.image_id])
    return MatchedPhoto(
        path=m.path,
        photo_id=m.photo_id,
        suggestions=suggestions,
        duplicate_of=m.duplicate_of,
        status=st.status,
        decided_sku=st.decided_sku,
        decided_name=st.decided_name,
        decided_card=st.card,
        decided_thumb=st.card_thumb,
        decided_from_search=st.from_search,
        thumb=rec.thumb if rec else None,
        suggestion_thumbs=thumbs,
        # Every one rejected, and none withdrawn since: a withdrawn one leaves room that
        # matching again fills with current products.
        all_rejected=bool(m.suggestions)
        and not suggestions
        and not matching.has_withdrawn_suggestions(lib, m.photo_id),
    )


def _take_card(item: QueueItem, card: Suggestion | None, thumb: Path | None) -> None:
    """Give ``item`` the library's card of its confirmed product (its name, and whether it
    was withdrawn, as they are now). The picture on show stays when the card on show is that
    product's: the one that matched, still on disk where a withdrawal emptied the library's
    (catalog_images). No card (N, undecided): the one on show is kept, hidden (show_item
    shows only the decision's), so Ctrl+Z after N brings it back as it was."""
    if card is None:
        return
    old, shown = item.decided_card, item.decided_thumb
    if old is not None and old.sku == card.sku and shown is not None and shown.exists():
        thumb = shown
    item.decided_card, item.decided_thumb = card, thumb


class ReviewSession(QObject):
    matching_progress = Signal(int, int)  # done, total; (0, 0) when idle
    message = Signal(str)  # a short status-bar message
    # A message about the photo on screen: it is withdrawn when another photo is selected,
    # so "There is no suggestion 9 for this photo" never stands beside a different photo.
    photo_message = Signal(str)
    photo_message_expired = Signal(str)
    decisions_changed = Signal()

    def __init__(
        self,
        worker: EngineWorker,
        page: ReviewPage,
        loader: PreviewLoader,
        on_error: ErrorHandler,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.page = page
        self.model: QueueModel = page.model
        self.loader = loader
        self.on_error = on_error
        self._tokens: list[CancelToken] = []
        self._matched_by: dict[int, CancelToken] = {}  # queue key -> its latest matching
        # Bumped by reset(): a chunk of the previous library's matching, cancelled or failed
        # after another library opened, must not move this one's progress (nor end it).
        self._epoch = 0
        self._stopping = False  # Stop pressed: say how many were left once chunks report
        self._photo_notice = ""  # the photo message on show, if any
        self.points_dialog: QWidget | None = None  # the latest 'matching points' window
        self._total = 0
        self._done = 0
        # Ctrl+Z puts back photos taken off the list: (row, item, decisions made before it).
        # A removal is undone only when no decision came after it (undoing those first).
        self._removed: list[tuple[int, QueueItem, int]] = []
        self._decided = 0  # decisions made in this session not undone yet
        # Remembered photos whose files are not there now (a card not plugged in): kept
        # remembered, (unmatched, stopped), until they are back or the library changes.
        self._absent: Absent = ([], [])
        # Photos from last time are listed a page at a time: the last page listed (its
        # photos let go), and whether the next is being read.
        self._page: Waiting | None = None
        self._waiting_asked = False
        self._undo_shown: QueueItem | None = None  # the photo the latest undo's answer showed
        self._twins: list[tuple[str, str]] = []  # copies left out during this matching
        self._again_tokens: list[CancelToken] = []  # photos searched again after a decision
        # The photo whose suggestions changed on show, and until when keys 1-9 wait (monotonic).
        self._cards_changed: tuple[int, float] | None = None
        self.loader.loaded.connect(self._on_preview)
        view = page.queue
        view.selectionModel().currentChanged.connect(self._on_current_changed)
        # The header's "photo N of M" counts the list: photos added while one is on show.
        self.model.rowsInserted.connect(lambda *_: self.refresh())
        self.model.rowsRemoved.connect(lambda *_: self.refresh())
        self.model.modelReset.connect(lambda: self.refresh())
        page.suggestion_clicked.connect(self.confirm_index)
        page.points_requested.connect(self.show_points)
        page.search_text_changed.connect(self.search)
        page.search_confirmed.connect(self.confirm_sku)
        page.threshold_changed.connect(self.set_threshold)
        page.accept_confident_clicked.connect(self.accept_confident)
        page.no_match_clicked.connect(self.no_match)
        page.skip_clicked.connect(self.skip)

    # -- queue -------------------------------------------------------------------------------
    @property
    def matching(self) -> bool:
        return self._total > 0

    def reset(self) -> None:
        """Forget the queue (another library was opened)."""
        self.cancel_matching()
        self._total = self._done = 0
        self.matching_progress.emit(0, 0)
        self.loader.clear()
        self.model.clear()
        self._removed.clear()
        self._matched_by.clear()
        self._epoch += 1
        self._stopping = False
        self._decided = 0
        self._absent = ([], [])
        self._page = None
        self._waiting_asked = False
        self._undo_shown = None
        self._twins = []

    def add_paths(self, paths: list[Path]) -> None:
        """Queue files and folders: folders are expanded on the engine thread."""
        if not paths:
            return

        def expand(ctx: TaskContext) -> list[Path]:
            return expand_paths(paths)

        self.worker.submit(
            expand,
            what="read the dropped files",
            priority=Priority.INTERACTIVE,
            on_result=lambda files: self._queue_files(paths, files),
            on_error=lambda err: self.on_error("read the dropped files", err),
        )

    def _queue_files(self, given: list[Path], files: list[Path]) -> None:
        if not files:
            names = ", ".join(p.name for p in given[:3])
            self.message.emit(f"No photos found in {names}")
            return
        fresh = self._list(files)
        # Photos listed but stopped before matching ('add the photo again to match it'): they
        # are matched now rather than counted as already queued.
        wanted = set(files)
        again = [i for i in self.model.items if i.stopped and i.path in wanted]
        for item in again:
            item.stopped, item.note = False, ""
            self.model.changed(item.key)
        skipped = len(files) - len(fresh) - len(again)
        if skipped:
            self.message.emit(f"{count(skipped, 'photo')} {were(skipped)} already in the queue")
        if self.current_row() < 0 and fresh:
            self.select_row(self.model.row_of(fresh[0].key))
        self._match(again + fresh)

    def _list(self, paths: list[Path]) -> list[QueueItem]:
        """Add photos to the queue (those not listed yet) and ask for their thumbnails."""
        fresh = self.model.add_paths(paths)
        for item in fresh:
            self.loader.request(("thumb", item.key), item.path, PREVIEW_SIDE)
        return fresh

    def _match(self, items: list[QueueItem]) -> None:
        if not items:
            return
        token = CancelToken()
        self._tokens.append(token)
        for item in items:  # the latest matching of each photo (added again after a Stop)
            self._matched_by[item.key] = token
            if item.stopped:  # matched now: a Stop marks it again (Ctrl+Z after a Stop)
                item.stopped = False
                if item.note == STOPPED_NOTE:
                    item.note = ""
                self.model.changed(item.key)
        self._total += len(items)
        self.matching_progress.emit(self._done, self._total)
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            paths = [i.path for i in chunk]

            def run(ctx: TaskContext, paths: list[Path] = paths) -> int:
                n = 0
                for m in ctx.lib.match(paths, top_k=TOP_K, cancel=ctx.token):
                    ctx.partial(describe_match(ctx.lib, m))
                    n += 1
                return n

            delivered: list[MatchedPhoto] = []  # what this chunk matched before it stopped

            def matched(
                mp: MatchedPhoto, delivered: list[MatchedPhoto] = delivered, e: int = self._epoch
            ) -> None:
                if e != self._epoch:
                    return  # matching since made anew (rematch): its progress counts afresh
                delivered.append(mp)
                self._on_matched(mp)

            self.worker.submit(
                run,
                what="match the photos",
                priority=Priority.BACKGROUND,
                token=token,
                on_partial=matched,
                on_cancelled=lambda chunk=chunk, d=delivered, e=self._epoch: self._chunk_cancelled(
                    chunk, d, token, e
                ),
                on_error=lambda err, chunk=chunk, d=delivered, e=self._epoch: self._chunk_failed(
                    chunk, err, d, e
                ),
            )

    def stop_matching(self) -> None:
        """The user's Stop: the photos not matched yet say so at once (not when their chunk
        reports back), so adding them again right away matches them."""
        left = [i for i in self.model.items if i.status == "pending" and not i.stopped]
        for item in left:
            self._mark_stopped(item)
        self.cancel_matching()
        self.refresh()
        # Said once the stopped chunks have reported (one still running may finish its
        # photos), with the count then; each photo also says so.
        self._stopping = bool(left)
        if not self.matching:
            self._say_stopped()

    def _say_stopped(self) -> None:
        self._stopping = False
        n = self.model.counts()["stopped"]
        if n:
            it = "it" if n == 1 else "them"
            self.message.emit(
                f"Matching stopped: {count(n, 'photo')} not matched; add {it} again to match "
                f"{it}, or press Delete to take {it} off the list"
            )

    def cancel_matching(self) -> None:
        for t in [*self._tokens, *self._again_tokens]:
            t.cancel()
        self._tokens.clear()
        self._again_tokens.clear()

    def _mark_stopped(self, item: QueueItem) -> None:
        item.stopped = True
        item.note = STOPPED_NOTE
        self.model.changed(item.key)

    def _step(self, n: int) -> None:
        self._done += n
        if self._done >= self._total:
            self._done = self._total = 0
            self._tokens.clear()
        self.matching_progress.emit(self._done, self._total)
        if self._stopping and not self.matching:
            self._say_stopped()
        if not self.matching:
            self._say_twins()
            self._list_more_waiting()  # e.g. the rest of the list could not be read

    def _say_twins(self) -> None:
        """Copies of a picture already listed, in one message once matching ends: one per
        copy replaced the last in the status bar (60 copies in a drop showed one name)."""
        twins, self._twins = self._twins, []
        if len(twins) == 1:
            ((name, other),) = twins
            self.message.emit(f"{name} is the same picture as {other}; it is listed once")
        elif twins:
            n, (name, other) = len(twins), twins[0]
            self.message.emit(
                f"{count(n, 'photo')} {are(n)} the same picture as another photo listed; each "
                f"picture is listed once (the first: {name}, the same as {other})"
            )

    def _chunk_cancelled(
        self,
        chunk: list[QueueItem],
        delivered: list[MatchedPhoto],
        token: CancelToken,
        epoch: int,
    ) -> None:
        if epoch != self._epoch:
            return  # the previous library's: its queue and progress are gone
        left = [
            i
            for i in chunk
            if i.status == "pending"
            and self.model.row_of(i.key) >= 0
            and self._matched_by.get(i.key) is token  # not added again since
        ]
        newly = [i for i in left if not i.stopped]  # (Stop marked the others already)
        for item in newly:
            self._mark_stopped(item)
        # Every photo of the chunk not matched counts as done: photos searched again after
        # an import are not pending, and the progress waited for them for ever.
        self._step(len(chunk) - len(delivered))
        # The photo on show and the counts are redrawn once, not per chunk: a Stop with 270
        # chunks queued froze the window for a second (review 50).
        shown = self.current_item()
        if not self.matching or any(i is shown for i in newly):
            self.refresh()

    def _chunk_failed(
        self, chunk: list[QueueItem], err: TaskError, delivered: list[MatchedPhoto], epoch: int
    ) -> None:
        if epoch != self._epoch:
            return  # the previous library's: its queue and progress are gone
        left = [i for i in chunk if i.status == "pending" and self.model.row_of(i.key) >= 0]
        for item in left:
            item.status = "error"
            item.error = "matching failed (see the error message)"
            self.model.changed(item.key)
        self._step(len(chunk) - len(delivered))
        self.on_error("match the photos", err)
        self.refresh()

    def _on_matched(self, mp: MatchedPhoto) -> None:
        self._apply_match(mp)  # first: when the progress says 'done', the photo shows it
        self._step(1)

    def _apply_match(self, mp: MatchedPhoto, counts: bool = True) -> None:
        """Show a photo's match; ``counts`` False leaves the page's counts to the caller (a
        batch updates them once)."""
        row = self.model.row_of_path(mp.path)
        item = self.model.item(row)
        if item is None:
            return
        if mp.photo_id is None and item.photo_id is not None and item.status != "pending":
            # Searched again (after an import) but its file has moved or gone: what the
            # library holds for it stands; it is not turned into an unreadable photo.
            return
        if mp.photo_id is not None:
            twin = self.model.row_of_photo(mp.photo_id)
            if twin >= 0 and twin != row:
                other = self.model.item(twin)
                self._twins.append((mp.path.name, other.path.name if other else ""))
                if not self.matching:
                    self._say_twins()
                self.model.remove(item.key)
                return
        self.model.set_photo(item, mp.photo_id)
        item.suggestions = mp.suggestions
        item.suggestion_thumbs = mp.suggestion_thumbs
        item.all_rejected = mp.all_rejected
        item.status = mp.status
        item.error = mp.error
        item.decided_sku = mp.decided_sku
        item.decided_name = mp.decided_name
        item.decided_from_search = mp.decided_from_search
        item.engine_thumb = mp.thumb
        # The library's: a photo listed confirmed without suggestions of the model in use
        # (Ctrl+Z brought back a confirmation made before a model switch) shows this card.
        _take_card(item, mp.decided_card, mp.decided_thumb)
        item.note = ""
        item.stopped = False  # matched before the Stop reached its chunk
        if (item.preview is None or item.preview.isNull()) and mp.thumb is not None:
            # The library's thumbnail, read in the pool: the photo's own may be unreadable
            # to Qt (HEIC) or gone. Read here, 2,000 photos from last time froze the window.
            self.loader.request(("thumb", item.key), mp.thumb, PREVIEW_SIDE)
        self.model.changed(item.key)
        if row == self.current_row():
            self.refresh(reload_photo=not self.page.photo.has_photo())
        elif counts:
            self.page.update_counts()

    def _waiting_ids(self) -> list[int]:
        """The listed photos still to decide, matched (their stored vectors can be searched
        again), in the order staff will see them: the one on show and those after it first
        (at most SEARCH_AGAIN_CHECKED)."""
        items = self.model.items
        start = max(0, self.current_row())
        return [
            i.photo_id
            for i in [*items[start:], *items[:start]]
            if i.status == "suggested" and i.photo_id is not None
        ][:SEARCH_AGAIN_CHECKED]

    def _rescored(self, rescored: Sequence[tuple[int, tuple[tuple[str, float], ...]]]) -> None:
        """New scores for photos still waiting (the calibration changed): the same cards in
        the same order, only how sure each says it is."""
        changed = False
        for pid, pairs in rescored:
            row = self.model.row_of_photo(pid)
            item = self.model.item(row)
            if item is None or item.status != "suggested":
                continue
            scores = dict(pairs)
            item.suggestions = [
                replace(s, score=scores[s.sku]) if s.sku in scores else s for s in item.suggestions
            ]
            self.model.changed(item.key)
            changed = True
            if row == self.current_row():
                self.refresh()
        if changed:
            self.page.update_counts()

    def _search_again(self, photo_ids: Sequence[int]) -> None:
        """Search again photos a decision outdated (a product just confirmed looks like them),
        in the background and without progress: they keep their suggestions until the new
        ones come. Without this, a delivery matched in one go kept the suggestions of that
        moment while staff confirmed its photos one by one (see SEARCH_AGAIN)."""
        items = [
            item
            for pid in photo_ids
            if (item := self.model.item(self.model.row_of_photo(pid))) is not None
            and item.status == "suggested"
        ]
        if not items:
            return
        token = CancelToken()
        self._again_tokens.append(token)
        chunks = [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]
        left = [len(chunks)]

        def found(mp: MatchedPhoto, epoch: int = self._epoch) -> None:
            row = self.model.row_of_path(mp.path)
            item = self.model.item(row)
            # Decided, or matched again by another model, since it was asked for: left as is.
            if epoch != self._epoch or item is None or item.status != "suggested":
                return
            if mp.status != "suggested" or mp.photo_id != item.photo_id:
                return
            before = [s.sku for s in item.suggestions]
            self._apply_match(mp)
            if row == self.current_row() and before != [s.sku for s in item.suggestions]:
                self._cards_changed = (item.key, time.monotonic() + SETTLE_S)
                self._notice(UPDATED_NOTE)

        def finished() -> None:
            left[0] -= 1
            if not left[0] and token in self._again_tokens:
                self._again_tokens.remove(token)

        for chunk in chunks:  # a chunk at a time, as matching: an undo waits for one at most
            paths = [i.path for i in chunk]

            def run(ctx: TaskContext, paths: list[Path] = paths) -> None:
                for m in ctx.lib.match(paths, top_k=TOP_K, cancel=ctx.token):
                    ctx.partial(describe_match(ctx.lib, m))

            # Before matching chunks: these photos are the next ones staff see.
            self.worker.submit(
                run,
                what="search the photos waiting again",
                priority=Priority.QUERY,
                token=token,
                on_partial=found,
                on_error=lambda err: log.warning("searching photos again failed: %s", err),
                on_done=finished,
            )

    def refresh_suggestions(self) -> int:
        """The catalog changed (an import added, changed or withdrew pictures): photos still
        to decide are searched again, so they offer new products and drop withdrawn ones.
        Their stored vectors are reused (no encoding); they keep showing their current
        suggestions until the new ones arrive. Returns how many are searched again."""
        items = [i for i in self.model.items if i.status == "suggested" and i.photo_id]
        self._refresh_cards()
        self._match(items)
        return len(items)

    def _refresh_cards(self) -> None:
        """The catalog changed: the confirmed products' cards (of photos listed or taken off
        the list) are read again, so a product the import withdrew says so on its card, as
        in search results. Keyed by SKU: a decision made meanwhile keeps its own card."""
        held = [i for _row, i, _n in self._removed]
        skus = sorted(
            {
                i.decided_sku
                for i in [*self.model.items, *held]
                if i.status == "confirmed" and i.decided_sku
            }
        )
        if not skus:
            return

        def run(ctx: TaskContext) -> dict[str, tuple[Suggestion, Path | None]]:
            products = {sku: ctx.lib.product(sku) for sku in skus}
            return {sku: _product_card(ctx.lib, p) for sku, p in products.items() if p}

        def done(cards: dict[str, tuple[Suggestion, Path | None]]) -> None:
            for item in [*self.model.items, *(i for _row, i, _n in self._removed)]:
                new = cards.get(item.decided_sku or "") if item.status == "confirmed" else None
                if new is not None:
                    _take_card(item, *new)
            self.refresh()

        self.worker.submit(
            run, what="read the confirmed products", priority=Priority.QUERY, on_result=done
        )

    def rematch(self) -> None:
        """Another model matches now: the photos still to decide lose their suggestions and
        are matched again with it (shown as matching until then), as are those not matched
        yet. The list keeps its photos, their order, the selection and what Ctrl+Z puts
        back: made anew from the library, it dropped the photos decided today, brought back
        those taken off it, and the selection jumped (the next key went to another photo)."""
        self.cancel_matching()  # chunks queued for the old model: queued again below
        # The progress starts afresh: the cancelled chunks' reports (and a chunk's photos
        # delivered after this) no longer count, or the bar counted photos twice ("40 of 80").
        self._epoch += 1
        self._total = self._done = 0
        self.matching_progress.emit(0, 0)
        items = [
            i
            for i in self.model.items
            if (i.status == "suggested" and i.photo_id is not None)
            or (i.status == "pending" and not i.stopped)
        ]
        for item in items:
            if item.status == "suggested":
                self._forget_suggestions(item)
        # Off the list (Delete): what Ctrl+Z puts back must not offer the old model's
        # suggestions either; an undecided one is matched again when it is back.
        for _row, item, _n in self._removed:
            if item.status == "suggested" and item.photo_id is not None:
                self._forget_suggestions(item)
            elif item.status in ("confirmed", "no_match"):
                self._forget_suggestions(item, decided=True)
        # Decided photos keep their decision, not the old model's suggestions: keys 1-9 would
        # pick among them, and Ctrl+Z made them undecided with them (undo matches it again).
        for item in self.model.items:
            if item.status in ("confirmed", "no_match") and item.suggestions:
                self._forget_suggestions(item, decided=True)
        if self._stopping:  # the stopped chunks' reports, which it waited for, no longer come
            self._say_stopped()
        self._match(items)
        self.refresh()

    def _forget_suggestions(
        self, item: QueueItem, decided: bool = False, note: str = REMATCH_NOTE
    ) -> None:
        """Drop the suggestions of a model no longer in use; an undecided photo is pending
        (``note``: 'Matching again with the new model…') until it is matched again. A
        confirmed photo keeps the card of the product it was confirmed as, to show (never
        to pick: keys 1-9 choose among ``suggestions`` only): the library's card of the
        product (its name now, marked if withdrawn; the suggestion it was confirmed from if
        there is none) with the picture that matched, else the library's picture (found by
        search, it was none of the suggestions). Any other photo keeps its card too,
        hidden: Ctrl+Z may confirm it as that product again (N, then Ctrl+Z)."""
        if decided and item.status == "confirmed":
            chosen = next((s for s in item.suggestions if s.sku == item.decided_sku), None)
            if chosen is not None:
                matched = item.suggestion_thumbs.get(chosen.image_id or -1)
                if item.decided_card is None or item.decided_card.sku != chosen.sku:
                    item.decided_card, item.decided_thumb = chosen, matched
                elif matched is not None:
                    item.decided_thumb = matched
        item.suggestions, item.suggestion_thumbs, item.all_rejected = [], {}, False
        if not decided:
            item.status, item.note = "pending", note
        self.model.changed(item.key)

    def unmatched_paths(self) -> list[Path]:
        """Queued photos the library does not hold yet (dropped, not matched yet): a model
        switch, another library or quitting would otherwise forget them."""
        listed = [
            i.path
            for i in self.model.items
            if i.photo_id is None and i.status == "pending" and not i.stopped
        ]
        return listed + self._absent[0]

    def stopped_paths(self) -> list[Path]:
        """Photos whose matching the user stopped: listed again as such after a model
        switch, another library or a restart, never matched unasked."""
        listed = [i.path for i in self.model.items if i.stopped and i.status == "pending"]
        return listed + self._absent[1]

    def resume(self, unmatched: Sequence[Path] = (), stopped: Sequence[Path] = ()) -> None:
        """Queue the library's undecided photos, so work left last time is not lost, and
        match ``unmatched`` (photos queued before but never matched) again; ``stopped`` are
        listed as stopped, not matched."""

        def run(ctx: TaskContext) -> tuple[Waiting, list[Path], list[Path], Absent]:
            lib = ctx.lib
            waiting = _waiting(lib, 0, None)
            # Matched since (from the command line, say): listed as the library has them,
            # if undecided, or not at all, never as stopped.
            known = {
                row[0]
                for row in select_in(
                    lib.db, "SELECT path FROM photos WHERE path IN ({marks})", map(str, stopped)
                )
            }
            here = {p for p in [*unmatched, *stopped] if p.is_file()}
            # Not there now (a card not plugged in, a share offline): still remembered.
            absent = (
                [p for p in unmatched if p not in here],
                [p for p in stopped if p not in here],
            )
            return (
                waiting,
                [p for p in unmatched if p in here],
                [p for p in stopped if p in here and str(p) not in known],
                absent,
            )

        def done(found: tuple[Waiting, list[Path], list[Path], Absent]) -> None:
            waiting, again, still_stopped, self._absent = found
            rematch = self._list_waiting(waiting)[1]
            queued = self._list(again)
            kept = self._list([p for p in still_stopped if p not in set(again)])
            for item in kept:
                self._mark_stopped(item)
            self._match(rematch + queued)
            said = []
            photos = waiting.photos
            if photos and waiting.left:
                n = len(photos) + waiting.left
                said.append(
                    f"{count(n, 'photo')} from last time {are(n)} waiting for review: the "
                    f"oldest {len(photos):,} are listed, the others once these are decided"
                )
            elif photos:
                n = len(photos)
                said.append(f"{count(n, 'photo')} from last time {are(n)} waiting for review")
            if kept:
                n = len(kept)
                said.append(
                    f"{count(n, 'photo')} stopped before matching {are(n)} listed as not matched"
                )
            if said:
                self.message.emit("; ".join(said))
            if (photos or queued) and self.current_row() < 0:
                self.select_row(self.model.next_undecided(-1))

        self.worker.submit(run, what="load the photos to review", on_result=done)

    def _list_waiting(self, waiting: Waiting) -> tuple[list[QueueItem], list[QueueItem]]:
        """List photos from last time with their stored matches (in one go: the page's
        counts once, not per photo); returns those listed now and those of them to match
        again (another model's)."""
        self._page = replace(waiting, photos=[])
        photos = waiting.photos
        listed = self._list([p.path for p in photos])
        fresh = {i.path: i for i in listed}
        rematch = []
        for mp in photos:
            item = fresh.get(mp.path)
            if item is None:
                continue
            if mp.needs_matching:
                rematch.append(item)
            else:
                self._apply_match(mp, counts=False)
        self.page.update_counts()
        return listed, rematch

    def _list_done(self) -> bool:
        """Nothing on the list is left to decide, nor still being matched."""
        return self.model.next_undecided(-1) < 0 and not any(
            i.status == "pending" and not i.stopped for i in self.model.items
        )

    def _list_more_waiting(self) -> None:
        """The list is done: the next page of photos from last time, if any was left."""
        page = self._page
        if page is None or not page.left or self._waiting_asked or not self._list_done():
            return
        self._waiting_asked = True
        after, upto, epoch = page.after, page.upto, self._epoch

        def done(waiting: Waiting) -> None:
            self._waiting_asked = False
            if epoch != self._epoch:  # another library by now
                return
            listed, rematch = self._list_waiting(waiting)
            self._match(rematch)
            if not listed:  # decided meanwhile (from the command line, say)
                self._say_all_reviewed()
                return
            n = len(listed)
            said = f"{count(n, 'more photo')} from last time listed for review"
            if waiting.left:
                said += f"; {count(waiting.left, 'other')} {are(waiting.left)} listed after them"
            self.message.emit(said)
            self.select_row(self.model.row_of(listed[0].key))

        def failed(err: TaskError) -> None:
            self._waiting_asked = False
            if epoch == self._epoch:
                self.on_error("list the photos waiting for review", err)

        self.worker.submit(
            lambda ctx: _waiting(ctx.lib, after, upto),
            what="list the photos waiting for review",
            on_result=done,
            on_error=failed,
        )

    # -- selection and navigation ------------------------------------------------------------
    def current_row(self) -> int:
        idx = self.page.queue.currentIndex()
        return idx.row() if idx.isValid() else -1

    def current_item(self) -> QueueItem | None:
        return self.model.item(self.current_row())

    def select_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            self.page.queue.setCurrentIndex(self.model.index(row))

    def move(self, step: int) -> None:
        n = self.model.rowCount()
        if n:
            row = self.current_row()
            self.select_row(max(0, min(n - 1, (row if row >= 0 else -1) + step)))

    def skip(self) -> None:
        row = self.current_row()
        nxt = self.model.next_undecided(row)
        self.select_row(nxt if nxt >= 0 and nxt != row else min(row + 1, self.model.rowCount() - 1))

    def remove_current(self) -> None:
        """Take the selected photo off the list (an unreadable file, a photo dropped by
        mistake). The library keeps it and its decisions; an undecided one is listed again
        the next time the library opens, as work left to do."""
        row = self.current_row()
        item = self.model.item(row)
        if item is None:
            return
        if item.status == "pending" and not item.stopped:
            self._notice("Still matching this photo: remove it once it is matched")
            return
        self.model.remove(item.key)
        self._removed.append((row, item, self._decided))
        self.message.emit(f"{item.path.name} taken off the list (Ctrl+Z puts it back)")
        if self.model.rowCount():
            self.select_row(min(row, self.model.rowCount() - 1))
        else:
            self.refresh()
        self._list_more_waiting()  # that was the last one to decide

    def _advance(self, row: int) -> None:
        nxt = self.model.next_undecided(row)
        if nxt >= 0:
            self.select_row(nxt)
            return
        self.refresh()
        if self._page is not None and self._page.left:  # more from last time than listed
            self._list_more_waiting()
        else:
            self._say_all_reviewed()

    def _say_all_reviewed(self) -> None:
        stopped = self.model.counts()["stopped"]
        if stopped and not self.matching:  # not 'all reviewed': these were never matched
            self.message.emit(
                f"All matched photos reviewed; {count(stopped, 'photo')} {were(stopped)} not "
                "matched (stopped): add them again to match them"
            )
        elif not self.matching:
            self.message.emit("All photos reviewed. Export the inventory with Ctrl+E.")

    def _on_current_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self._photo_notice:
            self.photo_message_expired.emit(self._photo_notice)
            self._photo_notice = ""
        self.refresh(reload_photo=True)

    def _notice(self, text: str) -> None:
        self._photo_notice = text
        self.photo_message.emit(text)

    def refresh(self, reload_photo: bool = False) -> None:
        row = self.current_row()
        item = self.model.item(row)
        self.page.show_item(item, row, self.model.rowCount())
        if item is not None and reload_photo:
            self.page.photo.set_photo(None, "Loading…")
            # The library's 256-px thumbnail where Qt cannot read the photo (HEIC) or it is gone.
            self.loader.request(("photo", item.key), [item.path, item.engine_thumb], PHOTO_SIDE)

    def _on_preview(self, key: object, image: QImage) -> None:
        kind, item_key = key  # type: ignore[misc]
        row = self.model.row_of(item_key)
        item = self.model.item(row)
        if item is None:
            return
        pix = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
        if kind == "thumb":
            if not pix.isNull():
                item.preview = pix
                self.model.changed(item.key)
        elif row == self.current_row():
            self.page.photo.set_photo(pix if not pix.isNull() else None, "No preview for this file")

    def set_threshold(self, threshold: float) -> None:
        self.model.set_threshold(threshold)
        self.refresh()

    # -- decisions ---------------------------------------------------------------------------
    def _decidable(self, item: QueueItem | None) -> bool:
        if item is None:
            return False
        # Being matched (again, after a model switch, it has a photo id): 'Still matching…',
        # not 'There is no suggestion 1 for this photo' as if it had none.
        if item.photo_id is None or (item.status == "pending" and not item.stopped):
            self._notice(
                "This photo could not be read"
                if item.status == "error"
                else STOPPED_KEY_NOTE
                if item.stopped
                else "Still matching…"
            )
            return False
        return True

    def confirm_index(self, index: int) -> None:
        item = self.current_item()
        if not self._decidable(item):
            return
        assert item is not None
        if index >= len(item.suggestions):
            # Its matching (again, after a model switch) was stopped: it has a photo id, so
            # N is allowed, but it has no suggestions because it was never matched.
            self._notice(
                STOPPED_KEY_NOTE
                if item.stopped and item.status == "pending"
                else f"There is no suggestion {index + 1} for this photo"
            )
            return
        changed = self._cards_changed
        if changed is not None and changed[0] == item.key and time.monotonic() < changed[1]:
            self._notice(SETTLE_NOTE)
            return
        s = item.suggestions[index]
        self._decide(item, "confirm", s.sku, s.name)

    def show_points(self, index: int = 0) -> QWidget | None:
        """Open 'why this match?' for the current photo's suggestion ``index`` (0: the top
        one): the verified matching points drawn between the photo and the catalog image."""
        from desktop_app.match_points import MatchPointsDialog

        item = self.current_item()
        if item is None or index >= len(item.suggestions):
            self.message.emit("Select a matched photo first")
            return None
        s = item.suggestions[index]
        if s.image_id is None:
            self._notice("This suggestion has no catalog image to compare with")
            return None
        photo: int | Path = item.photo_id if item.photo_id is not None else item.path
        dialog = MatchPointsDialog(
            self.worker, photo, s.image_id, f"{item.path.name} ↔ {s.name or s.sku}", self.page
        )
        dialog.show()
        self.points_dialog = dialog
        return dialog

    def confirm_sku(self, sku: str) -> None:
        item = self.current_item()
        if self._decidable(item):
            assert item is not None
            offered = next((s for s in item.suggestions if s.sku == sku), None)
            name = offered.name if offered is not None else ""
            self._decide(item, "confirm", sku, name, from_search=offered is None)

    def no_match(self) -> None:
        item = self.current_item()
        if self._decidable(item):
            assert item is not None
            self._decide(item, "no_match", None, "")

    def _apply(
        self,
        item: QueueItem,
        status: str,
        sku: str | None,
        name: str,
        from_search: bool = False,
    ) -> None:
        item.status = status
        item.decided_sku = sku
        item.decided_name = name
        item.decided_from_search = from_search
        self.model.changed(item.key)

    def _decide(
        self,
        item: QueueItem,
        action: str,
        sku: str | None,
        name: str,
        from_search: bool = False,
    ) -> None:
        before = (item.status, item.decided_sku, item.decided_name, item.decided_from_search)
        photo_id = item.photo_id
        assert photo_id is not None
        if (action, sku) == (
            {"confirmed": "confirm", "no_match": "no_match"}.get(item.status),
            item.decided_sku if item.status == "confirmed" else None,
        ):
            # Decided so already: the library records nothing, so neither is it counted
            # (Ctrl+Z must then still bring back a photo taken off the list before).
            self._advance(self.model.row_of(item.key))
            return
        was = item.decided_sku if item.status == "confirmed" else None
        if was is not None and (action != "confirm" or sku != was):
            # A key pressed on a photo already decided replaces that decision: say so.
            now = sku if action == "confirm" else "no match"
            self.message.emit(f"{item.path.name}: changed from {was} to {now} (Ctrl+Z undoes)")
        self._apply(
            item, "confirmed" if action == "confirm" else "no_match", sku, name, from_search
        )
        self._decided += 1  # the library's undo now comes before any earlier removal
        self._advance(self.model.row_of(item.key))
        waiting = self._waiting_ids()

        def run(ctx: TaskContext) -> StateUpdate:
            mark = ctx.lib.reference_mark()
            if action == "confirm":
                warning = ctx.lib.confirm(photo_id, sku).warning
                if warning:  # a product no longer in the supplier's catalog: recorded, said
                    self.message.emit(f"{item.path.name}: {warning}")
            else:
                ctx.lib.no_match(photo_id)
            return _outdated(ctx.lib, _state(ctx.lib, photo_id), waiting, mark)

        def failed(err: TaskError) -> None:
            self._apply(item, *before)
            self.refresh()
            self.on_error("record the decision", err)

        self.worker.submit(
            run,
            what="record the decision",
            priority=Priority.INTERACTIVE,
            on_result=self._reconcile,
            on_error=failed,
        )

    def _reconcile(self, st: StateUpdate, counts: bool = True) -> None:
        """The library's answer to a decision or an undo, given to the photo on the list and
        to one taken off it (Delete pressed before the answer came): Ctrl+Z puts that one
        back as the library has it, not as the keypress guessed (no name, no card).
        ``counts`` False leaves the page's counts to the caller (a batch: once)."""
        row = self.model.row_of_photo(st.photo_id)
        item = self.model.item(row)
        held = [i for _row, i, _n in self._removed if i.photo_id == st.photo_id]
        for each in {id(i): i for i in [item, *held] if i is not None}.values():
            self._apply(each, st.status, st.decided_sku, st.decided_name, st.from_search)
            _take_card(each, st.card, st.card_thumb)
        if item is not None:
            if row == self.current_row():
                self.refresh()
            elif counts:
                self.page.update_counts()
        self.decisions_changed.emit()
        self._rescored(st.rescored)
        self._search_again(st.search_again)

    def _reconcile_all(self, states: list[StateUpdate]) -> None:
        for st in states:
            self._reconcile(st, counts=False)
        self.page.update_counts()

    def undo(self) -> None:
        """Take back the latest action: a photo taken off the list when nothing was decided
        since (it goes back where it was), else the library's latest decision, whose photo
        is shown and queued again when it is not listed (decided in an earlier session)."""
        if self._removed and self._removed[-1][2] == self._decided:
            row, item, _ = self._removed.pop()
            at = self.model.row_of(item.key)
            if at < 0 and self.model.row_of_path(item.path) < 0:
                at = self.model.put_back(row, item)
                if item.status == "pending" and not item.stopped:
                    self._match([item])  # another model took over while it was off the list
            self.select_row(at if at >= 0 else self.current_row())
            self.message.emit(f"{item.path.name} is back on the list")
            return
        self._decided = max(0, self._decided - 1)
        # The undo waits behind a matching chunk (seconds, with a big catalog); keys pressed
        # meanwhile moved on. Its answer shows the undone photo only if they did not: it
        # used to pull the selection back, and the next Enter confirmed that photo again.
        pressed_on = self.current_item()

        waiting = self._waiting_ids()

        def run(ctx: TaskContext) -> tuple[str, str | None, StateUpdate, MatchedPhoto] | None:
            lib = ctx.lib
            mark = lib.reference_mark()
            d = lib.undo()
            if d is None:
                return None
            again = stored_match(lib, overview.photo_records(lib, [d.photo_id])[d.photo_id])
            others = [p for p in waiting if p != d.photo_id]
            return d.action, d.sku, _outdated(lib, _state(lib, d.photo_id), others, mark), again

        def done(result: tuple[str, str | None, StateUpdate, MatchedPhoto] | None) -> None:
            if result is None:
                self.message.emit("Nothing to undo")
                return
            action, sku, st, again = result
            fresh: list[QueueItem] = []  # listed now, to be matched
            stale: list[QueueItem] = []  # listed, its suggestions not the model's in use
            if self.model.row_of_photo(st.photo_id) < 0:
                for item in self._list([again.path]):
                    if again.needs_matching:
                        fresh.append(item)
                    else:
                        self._apply_match(again)
            elif again.needs_matching:
                # Undecided again, and the library holds no suggestions of the model in use
                # (decided before a model switch): matched again with it, never left offering
                # the old model's (the next Enter confirmed their top product).
                listed = self.model.item(self.model.row_of_photo(st.photo_id))
                if listed is not None and listed.status != "pending":
                    stale.append(listed)
            else:  # listed: what the library holds (a product it rejected is offered again)
                self._apply_match(again)
            self._reconcile(st)
            # Pending once reconciled (which says 'suggested'): Enter says 'Still matching…'.
            for item in fresh:
                item.status = "pending"
                self.model.changed(item.key)
            for item in stale:  # the model may not have changed (an import withdrew products)
                self._forget_suggestions(item, note=AGAIN_NOTE)
            self._match(fresh + stale)
            if fresh or stale:
                self.refresh()
            row = self.model.row_of_photo(st.photo_id)
            undone = self.model.item(row)
            # Where the keys are is where they were pressed, or where the previous undo's
            # answer put them (two quick Ctrl+Z: the second ends on the photo it undid).
            now = self.current_item()
            stayed = now is pressed_on or (now is not None and now is self._undo_shown)
            if row >= 0 and stayed:
                self.select_row(row)
                self._undo_shown = self.current_item()
            what = {
                "confirm": f"confirmation of {sku}",
                "reject": f"rejection of {sku}",
                "no_match": "'no match'",
            }.get(action, action)
            where = "" if stayed or undone is None else f" ({undone.path.name}, photo {row + 1})"
            self.message.emit(f"Undone: {what}{where}")

        self.worker.submit(run, what="undo", priority=Priority.INTERACTIVE, on_result=done)

    def accept_confident(self, parent: QWidget | None = None) -> None:
        """Confirm every confident top suggestion, after saying how many: never silently."""
        items = self.model.confident()
        threshold = self.model.threshold
        by_button = self.page.accept_button.hasFocus()
        if not items:
            self.message.emit(f"No photo has a suggestion scoring {threshold:.0%} or more")
            return
        # What the question lists is what Yes confirms: the list may change while it is open
        # (another model taking over clears the suggestions, or offers other ones).
        asked = [(i, i.photo_id, i.top.sku, i.top.name) for i in items if i.top and i.photo_id]
        sample = "\n".join(
            f"• {i.path.name} → {i.top.name or i.top.sku} ({i.top.score:.0%})"
            for i in items[:8]
            if i.top
        )
        more = f"\n… and {len(items) - 8} more" if len(items) > 8 else ""
        if not ask(
            parent or self.page,
            "Accept confident matches",
            f"Confirm the top suggestion for {count(len(items), 'photo')} scoring {threshold:.0%} "
            "or more?",
            sample + more + "\n\nEach one can be undone with Ctrl+Z.",
        ):
            return
        # Those still listed, undecided and offering what was asked. A photo being matched
        # again (another model took over while the question was open) has no suggestion of
        # the model in use: its confirmation was recorded with no rank and no score (the
        # Learning page's 'found by search', an empty rank in the export), so it waits; one
        # matched again meanwhile offers the new model's products, maybe others: it waits too.
        listed = [
            (item, pid, sku, name)
            for item, pid, sku, name in asked
            if self.model.row_of(item.key) >= 0
            and item.photo_id == pid
            and item.status in ("suggested", "pending")
        ]
        plan = [
            (item, pid, sku, name)
            for item, pid, sku, name in listed
            if item.status == "suggested" and item.top is not None and item.top.sku == sku
        ]
        rematching = sum(1 for i, *_ in listed if i.status == "pending")
        changed = len(listed) - len(plan) - rematching
        waits = []
        if rematching:
            waits.append(
                f"{count(rematching, 'photo')} {were(rematching)} being matched again with the "
                "new model: confirm them once they are"
            )
        if changed:
            waits.append(
                f"{count(changed, 'photo')} {were(changed)} matched again meanwhile and "
                f"{'offers' if changed == 1 else 'offer'} other suggestions: review "
                f"{'it' if changed == 1 else 'them'}"
            )
        if not plan:
            self.message.emit(
                "Nothing confirmed: "
                + ("; ".join(waits) if waits else "the photos listed were decided meanwhile")
            )
            return
        for item, _pid, sku, name in plan:
            self._apply(item, "confirmed", sku, name)
        self._decided += len(plan)
        self._advance(self.current_row())
        # The button pressed by keyboard is disabled now (nothing confident is left) and Qt
        # handed its focus to the search box, where N, S and 1-9 typed text: back to the queue.
        if by_button:
            self.page.queue.setFocus(Qt.FocusReason.OtherFocusReason)

        decided = {pid for _i, pid, _s, _n in plan}
        waiting = [p for p in self._waiting_ids() if p not in decided]

        def run(ctx: TaskContext) -> tuple[list[StateUpdate], list[str]]:
            out, warnings = [], []
            mark = ctx.lib.reference_mark()
            for item, pid, sku, _name in plan:
                warning = ctx.lib.confirm(pid, sku, by_score=True).warning
                if warning:  # withdrawn since it was suggested: recorded, and said
                    warnings.append(f"{item.path.name}: {warning}")
                out.append(_state(ctx.lib, pid))
            if out:  # the batch's references outdate photos once, carried by its last state
                out[-1] = _outdated(ctx.lib, out[-1], waiting, mark)
            return out, warnings

        def done(result: tuple[list[StateUpdate], list[str]]) -> None:
            states, warnings = result
            self._reconcile_all(states)
            said = f"Confirmed {count(len(states), 'confident photo')}"
            if waits:
                said += "; " + "; ".join(waits)
            if warnings:  # one confirm says so; a batch must not say less
                said += f"; {count(len(warnings), 'warning')}: " + "; ".join(warnings[:3])
            self.message.emit(said)

        def failed(err: TaskError) -> None:
            self.resync([pid for _i, pid, _s, _n in plan if pid is not None])
            self.on_error("accept the confident matches", err)

        self.worker.submit(
            run,
            what="accept the confident matches",
            priority=Priority.INTERACTIVE,
            on_result=done,
            on_error=failed,
        )

    def resync(self, photo_ids: list[int]) -> None:
        """Re-read the true state of some photos (after a partly failed bulk action)."""

        def run(ctx: TaskContext) -> list[StateUpdate]:
            return [_state(ctx.lib, pid) for pid in photo_ids]

        self.worker.submit(
            run,
            what="refresh the photo list",
            priority=Priority.INTERACTIVE,
            on_result=self._reconcile_all,
        )

    # -- search ------------------------------------------------------------------------------
    def search(self, text: str) -> None:
        if not text.strip():
            return

        def run(ctx: TaskContext) -> tuple[str, list[dict[str, object]], dict[str, Path]]:
            # Withdrawn products come last (Library.products), marked: they are never suggested.
            products = [withdrawn_note(p) for p in ctx.lib.products(text.strip(), limit=30)]
            thumbs = overview.sku_thumbs(ctx.lib, [str(p["sku"]) for p in products])
            return text, products, thumbs

        self.worker.submit(
            run,
            what="search the catalog",
            priority=Priority.INTERACTIVE,
            on_result=lambda r: self.page.set_search_results(*r),
        )
