"""Which photos an export covers: a shop books in one delivery at a time.

A delivery is what staff photographed together: the photos added on one day (or since a
given time), or the photos of one folder (a phone's export folder, ``match DIR``). The
library records when each photo was first added (UTC) and where it was, so a scope is a filter
over those two facts and needs nothing new in the database.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from engine.home import expand_home
from engine.wording import count

DAY_WORDS = {"today": 0, "yesterday": 1}


def _local(moment: datetime) -> datetime:
    """An aware time; a naive one is this computer's local time, as staff type it. A local
    time the clocks skip (summer time starting at midnight in Egypt or Chile) is read as
    the moment after the jump, not the hour before it (Python's default)."""
    if moment.tzinfo is not None:
        return moment
    aware = moment.astimezone()
    if aware.replace(tzinfo=None) != moment:  # in the gap: fold=1 gives the later offset
        aware = moment.replace(fold=1).astimezone()
    return aware


def _day_start(day: date) -> datetime:
    return _local(datetime.combine(day, time()))


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """'today', 'yesterday', '2026-11-24' (the day's start) or '2026-11-24 14:30', in this
    computer's local time, as an aware time; ValueError says what is understood."""
    said = text.strip()
    today = (now or datetime.now().astimezone()).astimezone().date()
    if said.lower() in DAY_WORDS:
        return _day_start(today - timedelta(days=DAY_WORDS[said.lower()]))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", said):
        try:
            return _day_start(date.fromisoformat(said))
        except ValueError:
            pass  # an impossible date: the message below
    else:
        try:
            return _local(datetime.fromisoformat(said.replace(" ", "T", 1)))
        except ValueError:
            pass
    raise ValueError(
        f"cannot read {text!r} as a time: give today, yesterday, a date such as "
        f"{today.isoformat()} or a date and time such as {today.isoformat()} 14:30"
    )


def _stamp(stored: str) -> datetime | None:
    """A stored UTC stamp; None for one written by something else (never in a scope)."""
    try:
        moment = datetime.fromisoformat(stored)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PhotoScope:
    """The photos added from ``since`` (inclusive) until ``until`` (exclusive), under
    ``folder`` (any depth); a field left None does not narrow. The default is every photo."""

    since: datetime | None = None
    until: datetime | None = None
    folder: Path | None = None

    @classmethod
    def day(cls, day: date, folder: Path | None = None) -> PhotoScope:
        """The photos added on one local calendar day (from ``folder`` if given)."""
        return cls(_day_start(day), _day_start(day + timedelta(days=1)), folder)

    @property
    def everything(self) -> bool:
        return self.since is None and self.until is None and self.folder is None

    def __post_init__(self) -> None:
        # Naive times are local ones (as typed); compared with stored UTC stamps they must
        # be aware. Frozen: set through object.__setattr__, once, here.
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None:
                object.__setattr__(self, name, _local(moment))
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError(
                f"nothing can be added from {_shown(self.since)} until {_shown(self.until)}: "
                "the end comes first"
            )

    @functools.cached_property
    def _folder_roots(self) -> tuple[str, ...]:
        """Resolved once per scope: every photo of an export is tested against it."""
        return _roots(self.folder) if self.folder is not None else ()

    def covers(self, path: str, added_at: str) -> bool:
        """Whether a photo recorded at ``path``, added at the stored ``added_at``, is in."""
        if self.folder is not None and not _inside(path, self._folder_roots):
            return False
        if self.since is None and self.until is None:
            return True
        moment = _stamp(added_at)
        if moment is None:
            return False
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment < self.until

    def describe(self, folder_by_name: bool = False) -> str:
        """'photos added since 2026-11-24 14:30 in /x': how a summary line names the scope;
        ``folder_by_name`` for a narrow place (a status bar): 'in x'."""
        if self.everything:
            return "all photos"
        parts = ["photos"]
        start, end = self.since, self.until
        if start is not None and end is not None:
            day = start.astimezone().date()  # a whole local day (23 or 25 hours at a change)
            if start == _day_start(day) and end == _day_start(day + timedelta(days=1)):
                parts.append(f"added on {day.isoformat()}")
                start = end = None
        if start is not None:
            parts.append(f"added since {_shown(start)}")
        if end is not None:
            parts.append(f"added before {_shown(end)}")
        if self.folder is not None:
            parts.append(f"in {self.folder.name if folder_by_name else self.folder}")
        return " ".join(parts)


def export_summary(
    scope: PhotoScope,
    rows: int,
    in_scope: int | None,
    *,
    per: str = "photo",
    folder_by_name: bool = False,
    undecided_hint: str = "",
) -> str:
    """' (photos added on 2026-11-24)': what a scoped export's summary adds after its row
    count. With no row written it tells 'none added then or there' from 'added but none
    decided yet', so ``in_scope`` (the scope's photo count) is only needed when ``rows`` is
    0; ``undecided_hint`` follows 'none decided yet' (the command line's '; --all ...')."""
    if scope.everything:
        return ""
    said = scope.describe(folder_by_name=folder_by_name)
    if rows:
        return f" ({said})"
    if not in_scope:
        return f" (none of the {said})"
    which = f"{count(in_scope, 'photo')} {said[len('photos ') :]}"
    if per == "sku":
        return f" ({which}, none confirmed yet)"
    return f" ({which}, none decided yet{undecided_hint})"


def _shown(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _roots(folder: Path) -> tuple[str, ...]:
    """``folder`` as typed and as it resolves now (a link to it, a relative folder typed on
    the command line), as strings to compare with every photo's recorded path."""
    folder = expand_home(folder)
    roots = {str(folder)}
    with contextlib.suppress(OSError):
        roots.add(str(folder.resolve()))
    return tuple(r.rstrip(os.sep) or os.sep for r in roots)


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    """``path`` lies in one of ``roots`` at any depth (a string test: tens of thousands of
    photos are checked per export, and a Path per photo cost seconds)."""
    return any(path.startswith(r if r.endswith(os.sep) else r + os.sep) for r in roots)


def photo_ids(conn: sqlite3.Connection, scope: PhotoScope) -> list[int]:
    """The ids of the photos in ``scope``, in the order they were added."""
    return [
        int(pid)
        for pid, path, added_at in conn.execute("SELECT id, path, added_at FROM photos ORDER BY id")
        if scope.covers(str(path), str(added_at))
    ]


@dataclass(frozen=True)
class PhotoFolder:
    """A folder photos were added from, for an export's choice of delivery."""

    folder: Path
    photos: int
    last_added: datetime | None


def photo_folders(conn: sqlite3.Connection) -> list[PhotoFolder]:
    """Every folder that holds photos of the library, newest addition first; a folder's
    count and newest addition include its sub-folders, as exporting it does."""
    own: dict[str, tuple[int, str]] = {}
    for path, added_at in conn.execute("SELECT path, added_at FROM photos"):
        folder = os.path.dirname(str(path))  # strings: a Path per photo cost a second at 50k
        n, last = own.get(folder, (0, ""))
        own[folder] = (n + 1, max(last, str(added_at)))
    counts = {f: n for f, (n, _last) in own.items()}
    lasts = {f: last for f, (_n, last) in own.items()}
    for start, (n, last) in own.items():  # each folder's photos count in its ancestors too
        child, parent = start, os.path.dirname(start)
        while parent != child:
            if parent in counts:
                counts[parent] += n
                lasts[parent] = max(lasts[parent], last)
            child, parent = parent, os.path.dirname(parent)
    folders = [PhotoFolder(Path(f), counts[f], _stamp(lasts[f])) for f in counts]
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(folders, key=lambda f: (f.last_added or oldest, str(f.folder)), reverse=True)
