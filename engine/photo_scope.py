"""Which photos an export covers: a shop books in one delivery at a time.

A delivery is what staff photographed together: the photos added on one day (or since a
given time), or the photos of one folder (a phone's export folder, ``match DIR``). The
library records when each photo was first added (UTC) and where it was, so a scope is a filter
over those two facts and needs nothing new in the database.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

DAY_WORDS = {"today": 0, "yesterday": 1}


def _local(moment: datetime) -> datetime:
    """An aware time; a naive one is this computer's local time, as staff type it."""
    return moment if moment.tzinfo is not None else moment.astimezone()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time()).astimezone()


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """'today', 'yesterday', '2026-11-24' (the day's start) or '2026-11-24 14:30', in this
    computer's local time, as an aware time; ValueError says what is understood."""
    said = text.strip().lower()
    today = (now or datetime.now().astimezone()).astimezone().date()
    if said in DAY_WORDS:
        return _day_start(today - timedelta(days=DAY_WORDS[said]))
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
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError(
                f"nothing can be added from {_shown(self.since)} until {_shown(self.until)}: "
                "the end comes first"
            )

    def covers(self, path: str, added_at: str) -> bool:
        """Whether a photo recorded at ``path``, added at the stored ``added_at``, is in."""
        if self.folder is not None and not _inside(Path(path), self.folder):
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
        if start is not None and end is not None and end - start == timedelta(days=1):
            local = start.astimezone()
            if local.time() == time():
                parts.append(f"added on {local.date().isoformat()}")
                start = end = None
        if start is not None:
            parts.append(f"added since {_shown(start)}")
        if end is not None:
            parts.append(f"added before {_shown(end)}")
        if self.folder is not None:
            parts.append(f"in {self.folder.name if folder_by_name else self.folder}")
        return " ".join(parts)


def _shown(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _inside(path: Path, folder: Path) -> bool:
    """``path`` lies in ``folder`` at any depth; both as recorded (resolved) and as the
    folder resolves now (a link to the folder, a relative folder typed on the command line)."""
    folder = folder.expanduser()
    if path.is_relative_to(folder):
        return True
    try:
        return path.is_relative_to(folder.resolve())
    except OSError:
        return False


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
    """Every folder that holds photos of the library, newest addition first."""
    seen: dict[Path, tuple[int, datetime | None]] = {}
    for path, added_at in conn.execute("SELECT path, added_at FROM photos"):
        folder = Path(str(path)).parent
        n, last = seen.get(folder, (0, None))
        moment = _stamp(str(added_at))
        if moment is not None and (last is None or moment > last):
            last = moment
        seen[folder] = (n + 1, last)
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(
        (PhotoFolder(f, n, last) for f, (n, last) in seen.items()),
        key=lambda f: (f.last_added or oldest, str(f.folder)),
        reverse=True,
    )
