"""The ``shopmatch`` command line: the same engine as the desktop app, for scripts and CI."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine import __version__
from engine.errors import folder_problem
from engine.home import expand_home
from engine.images import printable
from engine.photo_scope import PhotoScope, export_summary, parse_when, photo_ids
from engine.progress import Progress, format_eta
from engine.training.options import STAGE_CACHE, STAGE_TRAIN
from engine.wording import count, one_line

if TYPE_CHECKING:
    from engine.matching import PhotoMatch

EXIT_ERROR = 1
EXIT_PROBLEMS = 2  # ``check`` found damage it could not repair


UNITS = {STAGE_CACHE: "view", STAGE_TRAIN: "step"}  # what a training stage counts


class _Bar:
    """tqdm progress bars on stderr, one per stage; silent when stderr is not a terminal
    unless forced, so logs and pipes stay clean."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.stage = ""

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if self.bar is None or p.stage != self.stage:
            self.close()
            self.bar = tqdm(
                total=p.total,
                desc=p.stage,
                unit=UNITS.get(p.stage, "img"),
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
            self.stage = p.stage
        if p.run_left_s is not None:  # a stage of a longer run (train, import): its whole time
            self.bar.set_postfix_str(f"{format_eta(p.run_left_s)} in all", refresh=False)
        self.bar.update(p.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _filters(lib, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """Spell --category/--supplier as the catalog does (case forgiven), or stop with the
    values there are: a filter that matches nothing used to print nothing at all."""
    from engine.overview import distinct_values

    for column in ("category", "supplier"):
        given = getattr(args, column, None)
        if given is None:
            continue
        values = distinct_values(lib, column)
        same = [v for v in values if v.casefold() == given.strip().casefold()]
        if not same:
            shown = ", ".join(values[:12]) + (", …" if len(values) > 12 else "")
            raise ValueError(
                f"no product has {column} {given!r} ({column} values: {shown or 'none'})"
            )
        setattr(args, column, same[0])


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``, refused with the range (0
    epochs read as 'not given' once, and trained the default)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {high}, not {text!r}"
            )
        return value

    return parse


_top_k = _whole(1, 50)


def _home(text: str) -> str:
    """``text`` with '~' read by :func:`engine.home.expand_home` (bash leaves
    '--library=~/x' alone), an empty one refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (is a script's variable unset?)")
    return text if not text.startswith("~") else str(expand_home(text))


def _path(text: str) -> Path:
    """An argparse type for paths, '~' read by :func:`_home`. An empty one is refused:
    Path('') is the current folder, so a script's unset variable matched, imported or
    exported whatever lay where it ran."""
    return Path(_home(text))


def _output(text: str) -> str:
    """export's FILE as typed ('./-' is a file, '-' standard output), '~' read by _home."""
    return _home(text)


def _json(value: object) -> str:
    """One JSON line as every command writes it: text kept as it is (not escaped) where
    standard output can spell it, escaped where it cannot (a cp1252 scheduled task's log)."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return json.dumps(value, ensure_ascii=encoding not in {"utf8", "utf8sig"})


def _library_path(args: argparse.Namespace, create: bool = False) -> Path:
    """The library folder the command names; only commands that fill one (import, demo) may
    create it, so a mistyped --library never leaves a new, empty library in
    someone's photo folder."""
    from engine.backups import list_backups
    from engine.db import DB_NAME
    from engine.library import default_library_path

    path = Path(args.library) if args.library is not None else default_library_path()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file, not a library folder")
    # A folder with backups but no database is a library that lost it: Library says so.
    if not create and not (path / DB_NAME).is_file() and not list_backups(path):
        raise ValueError(
            f"no ShopMatch library at {path}: check --library, or create one with "
            "'shopmatch import' (or the app)"
        )
    return path


def _library(  # type: ignore[no-untyped-def]
    args: argparse.Namespace,
    create: bool = False,
    restore_damaged: bool = False,
    announce: bool = True,
):
    """Open the library (see ``_library_path``); ``announce``: say on stderr what opening
    it repaired (``check`` reports it in its own lines instead)."""
    from engine.library import Library

    path = _library_path(args, create)
    lib = Library(path, square_mode=args.square, restore_damaged=restore_damaged)
    for line in lib.repairs if announce else []:  # a repair made while opening is never silent
        print(f"shopmatch: repaired: {line}", file=sys.stderr)
    return lib


def cmd_import(args: argparse.Namespace, bar: _Bar) -> int:
    sheet = None
    # A mistyped folder or sheet must not leave a new, empty library behind: checked first.
    if args.folder is not None and (problem := folder_problem(Path(args.folder))) is not None:
        hint = " (a sheet goes after --sheet)" if Path(args.folder).is_file() else ""
        raise FileNotFoundError(problem + hint)
    if args.sheet is None:
        if args.folder is None:
            raise ValueError("give a folder of catalog images, a --sheet, or both")
        from engine.catalog_import import require_images

        require_images(Path(args.folder))
    else:
        if Path(args.sheet).is_dir():
            raise ValueError(f"{args.sheet} is a folder; --sheet takes the CSV file in it")
        if not Path(args.sheet).is_file():
            raise FileNotFoundError(f"sheet not found: {args.sheet}")
        from engine.sheet import read_sheet

        sheet = read_sheet(Path(args.sheet))  # an unusable sheet (no SKU column) says so here
    with _library(args, create=True) as lib:
        report = lib.import_catalog(
            args.folder, sheet, progress=bar, removals=args.removals, replaces=args.replaces
        )
    bar.close()
    print(report.summary())
    for where, reason in report.skipped:
        print(f"  skipped {where}: {reason}")
    for where, reason in report.notes:
        print(f"  note {where}: {reason}")
    if (problem := report.problem()) is not None:  # ran, but most pictures were unreadable
        print(f"shopmatch: error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _sku(sku: object) -> str:
    """A SKU on one printable line, spelled as ``confirm`` accepts it (spaces kept)."""
    return one_line(sku, squeeze=False)


def _print_matches(  # type: ignore[no-untyped-def]
    results,
    as_json: bool,
    decided: dict[int, dict[str, str | None]],
    rejected: dict[int, set[str]] | None = None,
) -> int:
    """One block per photo; ``decided``: photo id -> what staff already decided for it
    ({action: confirm or no_match, sku});
    ``rejected``: photo id -> SKUs staff rejected for it, marked where they are suggested."""
    rejected = rejected or {}
    failures = 0
    for r in results:
        if r.error:
            failures += 1
        if as_json:
            print(
                _json(
                    {
                        "photo": str(r.path),
                        "photo_id": r.photo_id,
                        "error": r.error,
                        "duplicate_of": r.duplicate_of,
                        "decided": decided.get(r.photo_id) if r.photo_id is not None else None,
                        "suggestions": [s.__dict__ for s in r.suggestions],
                        "rejected": sorted(rejected.get(r.photo_id, ())),
                    }
                )
            )
            continue
        if r.error:
            print(f"{one_line(printable(r.path), squeeze=False)}: skipped: {r.error}")
            continue
        note = f" (same picture as {Path(r.duplicate_of).name})" if r.duplicate_of else ""
        if (d := decided.get(r.photo_id)) is not None:  # matched again: not waiting for one
            said = f"confirmed as {_sku(d['sku'])}" if d["action"] == "confirm" else None
            note += f" ({said or 'marked no match'})"
        # A name with a line break would read as two blocks: printed on one line.
        print(f"[{r.photo_id}] {one_line(printable(r.path), squeeze=False)}{note}")
        skus = [_sku(s.sku) for s in r.suggestions]
        width = min(40, max(map(len, skus), default=0))
        # Matching points (geometrically verified keypoints) can rank a product above one
        # with a higher sim: shown, so the order explains itself.
        points = [
            f"  {count(s.inliers, 'matching point')}" if s.inliers else "" for s in r.suggestions
        ]
        room = max(map(len, points), default=0)
        wrong = rejected.get(r.photo_id, set())
        for s, sku, said in zip(r.suggestions, skus, points, strict=True):
            # Kept in place (its rank stays what 'confirm' records), but never unmarked.
            mark = "  (rejected)" if s.sku in wrong else ""
            print(
                f"    {s.rank}. {sku:<{width}} {s.score:6.1%}  sim {s.similarity:.3f}"
                f"{said:<{room}}  {one_line(s.name)}{mark}"
            )
    return failures


def _decided(lib, results) -> dict[int, dict[str, str | None]]:  # type: ignore[no-untyped-def]
    """What staff already decided for each matched photo that has one: {action, sku}."""
    from engine.decisions import effective_states

    states = effective_states(lib)  # one query, not one per photo
    return {
        r.photo_id: {"action": d.action, "sku": d.sku}
        for r in results
        if (d := states.get(r.photo_id)) is not None
    }


def cmd_match(args: argparse.Namespace, bar: _Bar) -> int:
    with _library(args) as lib:  # nothing to match against in a new library
        _filters(lib, args)
        if not len(lib.index):  # every photo would list no suggestion, and no word why
            raise ValueError(
                "the catalog has no pictures to match photos against yet: import the "
                "supplier's pictures first ('shopmatch import FOLDER --sheet SHEET.csv')"
            )
        results: list[PhotoMatch] = []
        interrupted = False
        try:
            for m in lib.match(
                args.photos,
                top_k=args.top,
                category=args.category,
                supplier=args.supplier,
                progress=bar,
            ):
                results.append(m)
        except KeyboardInterrupt:  # Ctrl+C: what was matched is saved, and said (its ids)
            interrupted = True
        bar.close()
        from engine.decisions import rejected_by_photo

        failures = _print_matches(
            results, args.json, _decided(lib, results), rejected_by_photo(lib)
        )
    if interrupted:
        raise KeyboardInterrupt
    if not results:
        from engine.images import PICTURE_KINDS

        names = ", ".join(str(p) for p in args.photos[:3])
        raise ValueError(
            f"no photos found in {names} (looked for {PICTURE_KINDS} files, in sub-folders too)"
        )
    if failures:
        print(f"{count(failures, 'file')} could not be used", file=sys.stderr)
    return 1 if failures == len(results) else 0  # scripts learn that nothing was matched


def cmd_decide(args: argparse.Namespace, bar: _Bar) -> int:
    with _library(args) as lib:
        if args.command == "undo":
            photo = lib.photo_id(args.photo) if args.photo else None
            d = lib.undo(photo)
            print(
                "nothing to undo"
                if d is None
                else f"undid {d.action.replace('_', ' ')} of photo {d.photo_id}"
                + (f" ({_sku(d.sku)})" if d.sku else "")
            )
            return 0
        photo = lib.photo_id(args.photo)
        before = lib.photo_state(photo).decision
        last_id = int(lib.db.execute("SELECT coalesce(max(id), 0) FROM decisions").fetchone()[0])
        if args.command == "confirm":
            d = lib.confirm(photo, args.sku)
        elif args.command == "reject":
            d = lib.reject(photo, args.sku)
        else:
            d = lib.no_match(photo)
    if d.warning:  # e.g. a withdrawn SKU: recorded, but said
        print(f"shopmatch: warning: {one_line(d.warning, squeeze=False)}", file=sys.stderr)
    what = _done(d.action, d.sku)
    if (before is not None and d.id == before.id) or d.id <= last_id:
        print(f"photo {d.photo_id}: already {what}; nothing recorded")
        return 0
    rank = f", was suggestion #{d.rank}" if d.rank else ""
    replaced = ""
    if before is not None and d.action in ("confirm", "no_match"):
        # After a comma, like the rank: "photo N: ACTION [SKU]" stays the line's start.
        replaced = f", replacing {_done(before.action, before.sku)}"
    print(f"photo {d.photo_id}: {what}{rank}{replaced}")
    return 0


def _done(action: str, sku: str | None) -> str:
    """'confirmed SKU-1', 'rejected SKU-2', 'marked no match': a decision as a past event."""
    said = {"confirm": "confirmed", "reject": "rejected", "no_match": "marked no match"}
    return said.get(action, action) + (f" {_sku(sku)}" if sku else "")


def _export_scope(args: argparse.Namespace) -> PhotoScope:
    """The photos ``export`` covers, from --on, --since, --before and --folder."""
    if args.on is not None and (args.since is not None or args.before is not None):
        raise ValueError("--on names a whole day: give it alone, or --since/--before instead")
    folder = args.folder
    if args.on is not None:
        return PhotoScope.day(parse_when(args.on).date(), folder)
    return PhotoScope(
        since=None if args.since is None else parse_when(args.since),
        until=None if args.before is None else parse_when(args.before),
        folder=folder,
    )


def cmd_export(args: argparse.Namespace, bar: _Bar) -> int:
    from engine.export_csv import inventory_csv

    to_stdout = args.output == "-"  # as typed: './-' is a file
    scope = _export_scope(args)
    with _library(args) as lib:
        # A folder moved or deleted since is still a delivery the library knows (the app
        # lists it); only a folder with no photo recorded under it is a typo.
        folder = scope.folder
        unknown = (
            folder is not None
            and not folder.is_dir()
            and not photo_ids(lib.db.conn, PhotoScope(folder=folder))
        )
        if unknown:
            raise ValueError(
                f"--folder: folder not found, and no photo was added from it: {args.folder}"
            )
        if to_stdout:  # to standard output, for a pipe: the summary goes to stderr
            data, n = inventory_csv(
                lib,
                per=args.per,
                include_undecided=args.all,
                bom=False,
                separator=args.separator,
                scope=scope,
            )
            # 'export - | head' (the reader had enough): main() ends it quietly.
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            n = lib.export_csv(
                Path(args.output),
                per=args.per,
                include_undecided=args.all,
                separator=args.separator,
                scope=scope,
            )
        # Only an empty export needs the scope's count: 'none added' or 'none decided yet'.
        in_scope = None if n or scope.everything else lib.photos_in(scope)
    hint = (
        ""
        if n or args.all
        else " (no photo is confirmed yet)"
        if args.per == "sku"
        else " (no photo is decided yet; --all lists every photo)"
    )
    if not scope.everything:  # say which photos, and whether any were added then or there
        hint = export_summary(scope, n, in_scope, per=args.per, undecided_hint="; --all lists them")
    where = "standard output" if to_stdout else args.output
    print(
        f"wrote {count(n, 'row')} to {where}{hint}",
        file=sys.stderr if to_stdout else sys.stdout,
    )
    return 0


def cmd_status(args: argparse.Namespace, bar: _Bar) -> int:
    from engine.library import LibraryLockedError, read_status

    try:
        with _library(args) as lib:
            st = lib.status()
    except LibraryLockedError:  # the app has it open: looking is harmless, so look anyway
        st = read_status(_library_path(args))
        print(
            "shopmatch: the library is open in another ShopMatch window or command; these "
            "are the figures it last saved",
            file=sys.stderr,
        )
    if args.json:
        print(_json({k: str(v) if isinstance(v, Path) else v for k, v in st.__dict__.items()}))
        return 0
    for name, value in st.__dict__.items():
        if value != "":  # (no backup problem)
            print(f"{name.replace('_', ' '):<16}{value}")
    return 0


def cmd_check(args: argparse.Namespace, bar: _Bar) -> int:
    from engine.check import CheckReport, check_library
    from engine.library import DamagedDatabaseError

    try:  # --repair also puts back a backup of a database too damaged to open at all
        with _library(args, restore_damaged=args.repair, announce=False) as lib:
            report = check_library(lib, repair=args.repair, deep=args.deep)
    except DamagedDatabaseError as exc:  # a finding like any other, not a failed command
        report = CheckReport(repair=args.repair)
        report.add("database", "error", str(exc), repairable=exc.backup is not None)
    if args.json:
        print(_json(report.to_dict()))
    else:
        for line in report.lines():
            print(line)
    return 0 if report.ok else EXIT_PROBLEMS


def cmd_backups(args: argparse.Namespace, bar: _Bar) -> int:
    from engine.backups import decision_count, folder_problem, list_backups

    if args.now:
        with _library(args) as lib:
            print(f"backed up to {lib.take_backup()}")
    path = _library_path(args)
    found = list_backups(path)  # listed without opening: the database may be the damaged
    # thing the list is wanted for
    stuck = folder_problem(path)
    if stuck:  # a backups path that is a file or read-only
        print(f"no backup can be taken: {stuck}")
    elif not found:
        print("no backups yet: one is taken when the library is closed after a change")
    for b in found:
        when = b.taken.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        size = b.path.stat().st_size / 1e6
        held = decision_count(b.path) or "unreadable"
        why = f"  ({b.reason})" if b.reason else ""
        print(f"{when}  {held:>15}  {size:7.1f} MB  {b.path}{why}")
    return 0


def cmd_products(args: argparse.Namespace, bar: _Bar) -> int:
    from engine.sheet import product_price

    with _library(args) as lib:
        _filters(lib, args)
        # Every match is fetched so the ones not printed can be counted, never dropped unsaid.
        found = lib.products(
            args.text, category=args.category, supplier=args.supplier, limit=sys.maxsize
        )
        shown = found[: args.limit] if args.limit else found
        for p in shown:
            price = product_price(p)
            price = f"{price:.2f}" if isinstance(price, int | float) else one_line(price or "")
            # One line per product, whatever line breaks or escapes a sheet's cells held.
            sku = _sku(p["sku"])
            name, category, supplier = (one_line(p[k]) for k in ("name", "category", "supplier"))
            gone = "  (no longer in the catalog)" if p.get("withdrawn_at") else ""
            print(f"{sku:<24} {name:<32} {category:<16} {supplier:<16} {price}{gone}")
    if len(shown) < len(found):
        print(
            f"… and {count(len(found) - len(shown), 'more product')}: --limit 0 lists every "
            "one, or narrow the search",
            file=sys.stderr,
        )
    if not found:
        what = f"match {args.text!r}" if args.text else "are in this selection"
        print(f"shopmatch: no products {what}", file=sys.stderr)
        return 1
    return 0


def cmd_models(args: argparse.Namespace, bar: _Bar) -> int:
    from engine.export_csv import local_minute
    from engine.overview import model_versions

    with _library(args) as lib:
        if args.install:
            manifest = lib.install_model(args.install)
            print(f"installed model {manifest.version}")
        if args.activate:
            lib.activate_model(args.activate, progress=bar)
            bar.close()
            print(f"active model is now {args.activate}")
        for version in args.remove or []:
            lib.remove_model(version)
            print(f"removed model {version}")
        for v in model_versions(lib):
            mark = "*" if v.active else " "
            top1 = v.measured_top1
            measured = f"  top-1 {top1:.3f}" if top1 is not None else ""
            state = f"  ({v.state})" if v.state and not v.active else ""
            made = local_minute(v.created_at)  # the shop's clock, as 'backups' and 'status'
            print(f"{mark} {v.version:<36} {v.architecture:<22} {made}{measured}{state}")
            problem = lib.model_problem(v.version)  # e.g. its folder deleted by hand
            if problem:
                print(f"    cannot be used: {problem}")
            comparison = v.comparison() if args.verbose else ""
            if comparison:
                print("    " + comparison.replace("\n", "\n    "))
    return 0


def _train_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from engine.training.trainer import TrainConfig

    base = TrainConfig(square_mode=args.square)
    return dataclasses.replace(
        base,
        epochs=base.epochs if args.epochs is None else args.epochs,
        members=base.members if args.members is None else args.members,
        unfreeze=args.unfreeze or base.unfreeze,
        loss=args.loss or base.loss,
        input_size=base.input_size if args.input_size is None else args.input_size,
        max_views=base.max_views if args.max_views is None else args.max_views,
    )


@contextlib.contextmanager
def _cancel_on_sigint(token):  # type: ignore[no-untyped-def]
    """First Ctrl-C asks the running job to stop at its next safe point; a second one
    interrupts at once (the library stays consistent either way)."""

    def handler(signum: int, frame: object) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print(
            "\nshopmatch: stopping at the next safe point (Ctrl-C again to force)", file=sys.stderr
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_train(args: argparse.Namespace, bar: _Bar) -> int:
    from engine.learning import learn
    from engine.progress import Cancelled, CancelToken

    with _library(args) as lib, _cancel_on_sigint(CancelToken()) as token:
        try:
            report = learn(
                lib, _train_config(args), activate=not args.no_activate, progress=bar, cancel=token
            )
        except Cancelled:
            bar.close()
            print("shopmatch: training cancelled; the active model is unchanged", file=sys.stderr)
            return 130
    bar.close()
    print(_json(report.to_dict()) if args.json else report.summary())
    return 0


def cmd_eval(args: argparse.Namespace, bar: _Bar) -> int:
    from engine.evaluation import evaluate_dataset

    if args.no_train and args.train is None:
        raise ValueError("--no-train needs --train TRAIN.csv")
    if args.no_train and args.adapt:
        raise ValueError("--adapt trains a model and --no-train asks for none: drop one of them")
    report = evaluate_dataset(
        args.dataset,
        square_mode=args.square,
        train_csv=args.train,
        learn=not args.no_train,
        adapt=args.adapt,
        online=args.online,
        train_config=_train_config(args) if (args.train or args.adapt) else None,
        progress=bar,
    )
    bar.close()
    if args.json:
        data = report.to_dict()
        if not args.per_sku:
            data.pop("per_sku")
        print(_json(data))
        return _measured(report)
    m = report.overall
    if report.memory is not None:
        failed = report.memory["train_unreadable"]
        print(
            f"confirmed {report.memory['train_photos']} train photos "
            f"in {report.memory['confirm_s']:.0f} s (instant memory)"
            + (f"; {failed} could not be read and were left out" if failed else "")
        )
    if report.learning is not None:
        t = report.learning["timings"]
        state = "activated" if report.learning["activated"] else "not activated"
        gate = report.learning["gate"] or {}
        print(
            f"trained {report.learning['version']} in {t.get('train_s', 0):.0f} s: {state} "
            f"({gate.get('reason', '')})"
        )
    print(
        f"photos {m.n}{' (online)' if args.online else ''}  top-1 {m.top1:.3f}  "
        f"top-5 {m.top5:.3f}  MRR {m.mrr:.3f}  mAP@5 {m.map5:.3f}  "
        f"{report.images_per_s:.1f} images/s  ({report.model_version}, {report.square_mode})"
    )
    if args.per_sku:
        print(f"{'sku':<28} {'n':>3} {'top-1':>6} {'top-5':>6} {'MRR':>6} {'mAP@5':>6}")
        for sku, s in report.per_sku.items():
            print(f"{sku:<28} {s.n:>3} {s.top1:>6.2f} {s.top5:>6.2f} {s.mrr:>6.2f} {s.map5:>6.2f}")
    for where, reason in report.catalog_skipped:  # as 'import' lists them
        print(f"  skipped {where}: {reason}")
    for path, reason in report.unreadable:
        print(f"  unreadable {path}: {reason}")
    return _measured(report)


def _measured(report) -> int:  # type: ignore[no-untyped-def]
    """eval's exit status: 1 when no truth photo could be read (its zeros measured nothing)."""
    n = report.overall.n
    if n and len(report.unreadable) >= n:
        print(
            f"shopmatch: error: none of the {count(n, 'truth photo')} could be read: "
            "nothing was measured",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return 0


def cmd_demo(args: argparse.Namespace, bar: _Bar) -> int:
    """Import the bundled demo catalog, match the demo photos, write an inventory CSV."""
    from engine.resources import demo_dir

    demo = demo_dir()
    with _library(args, create=True) as lib:
        print(f"library: {lib.path}")
        report = lib.import_catalog(demo, demo / "catalog.csv", progress=bar)
        bar.close()
        print(f"catalog: {report.summary()}")
        results = list(lib.match([demo / "photos"], top_k=3, progress=bar))
        bar.close()
        decided = _decided(lib, results)
        _print_matches(results, False, decided)
        out = Path(args.output)
        n = lib.export_csv(out, per="photo", include_undecided=True)
    rows = count(n, "row")
    what = (
        f"{len(decided)} decided, the others their top suggestion"
        if decided
        else "top suggestion per photo, not yet confirmed"
    )
    print(f"wrote {rows} ({what}) to {out.resolve()}")
    print(
        "next: confirm with 'shopmatch confirm PHOTO_ID [SKU]', then "
        "'shopmatch export inventory.csv'"
    )
    return 0


def _add_training_options(p: argparse.ArgumentParser) -> None:
    from engine.training.budget import MAX_VIEWS
    from engine.training.options import LOSSES, TRAIN_INPUT_SIZE, UNFREEZE

    p.add_argument(
        "--epochs", type=_whole(1, 100), metavar="N", help="passes over the training views"
    )
    p.add_argument(
        "--members",
        type=_whole(1, 8),
        metavar="K",
        help="models trained on the same prepared images and averaged (default 2: better and "
        "steadier than 1; each one after the first costs 2 more epochs)",
    )
    p.add_argument(
        "--unfreeze",
        choices=UNFREEZE,
        help="what to train: head (projection only, fastest), conv (plus the last 1x1 conv), "
        "lastN (plus the last N blocks; slower, usually better)",
    )
    p.add_argument(
        "--loss",
        choices=LOSSES,
        help="arcface (SKU classes, uses confirmations), ortho (catalog only, unsupervised), both",
    )
    p.add_argument(
        "--input-size",
        type=_whole(32, 1024),
        metavar="PX",
        help=f"encoder input size (default {TRAIN_INPUT_SIZE})",
    )
    p.add_argument(
        "--max-views",
        type=_whole(0, 10_000_000),
        metavar="N",
        help=f"training views a run aims at (default {MAX_VIEWS}: 15-17 minutes of training "
        "on a 2-core laptop; 0: no limit): confirmed photos keep up to half, catalog images get "
        "fewer simulated views (down to two) and photos fill the rest, the most recent first",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopmatch", description="Match photos of delivered goods to a supplier catalog."
    )
    parser.add_argument("--version", action="version", version=f"shopmatch {__version__}")
    parser.add_argument(
        "--library",
        type=_path,
        default=None,
        help="library folder (default: your user data folder)",
    )
    parser.add_argument(
        "--square",
        choices=["letterbox", "crop"],
        default="letterbox",
        help="how photos are made square for the encoder (default: letterbox)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("import", help="import or update a supplier catalog")
    p.add_argument("folder", type=_path, nargs="?", help="folder of catalog images")
    p.add_argument(
        "--sheet",
        type=_path,
        help="Excel workbook (.xlsx) or CSV with sku,name,category,supplier,price,image "
        "columns (image paths relative to the "
        "sheet or the catalog folder; a picture they miss is looked for by file name)",
    )
    p.add_argument(
        "--replaces",
        type=_path,
        metavar="OLD_FOLDER",
        help="this folder is a newer copy of the catalog imported from OLD_FOLDER: its "
        "pictures count as this folder's (kept where repeated here, else removed)",
    )
    gone = p.add_mutually_exclusive_group()
    gone.add_argument(
        "--remove-missing",
        dest="removals",
        action="store_const",
        const="remove",
        help="take pictures this import no longer finds out of the catalog, however many "
        "(without either option, an import that would take most of them asks first)",
    )
    gone.add_argument(
        "--keep-missing",
        dest="removals",
        action="store_const",
        const="keep",
        help="keep every picture imported before (a sheet of new products only)",
    )
    p.set_defaults(func=cmd_import, removals="ask")

    p = sub.add_parser("match", help="suggest catalog products for photos")
    p.add_argument("photos", type=_path, nargs="+", help="photo files or folders")
    p.add_argument(
        "--top", type=_top_k, default=5, help="suggestions per photo, 1 to 50 (default 5)"
    )
    p.add_argument("--category", help="only suggest products of this category")
    p.add_argument("--supplier", help="only suggest products of this supplier")
    p.add_argument("--json", action="store_true", help="one JSON object per photo")
    p.set_defaults(func=cmd_match)

    p = sub.add_parser("confirm", help="confirm a SKU for a photo (default: top suggestion)")
    p.add_argument("photo", help="photo id or path")
    p.add_argument("sku", nargs="?")
    p.set_defaults(func=cmd_decide)
    p = sub.add_parser("reject", help="record that a suggested SKU is wrong for a photo")
    p.add_argument("photo", help="photo id or path")
    p.add_argument("sku")
    p.set_defaults(func=cmd_decide)
    p = sub.add_parser("no-match", help="record that a photo's product is not in the catalog")
    p.add_argument("photo", help="photo id or path")
    p.set_defaults(func=cmd_decide, command="no-match")
    p = sub.add_parser("undo", help="undo the latest decision (of one photo, or overall)")
    p.add_argument("photo", nargs="?", help="photo id or path")
    p.set_defaults(func=cmd_decide)

    p = sub.add_parser("export", help="write the matched inventory as CSV")
    p.add_argument("output", type=_output, help="the CSV file to write, or - for standard output")
    p.add_argument(
        "--per",
        choices=["photo", "sku"],
        default="photo",
        help="one row per photo, or per SKU with quantity",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="also list photos not yet decided, with their top suggestion (one row per photo)",
    )
    p.add_argument(
        "--separator",
        choices=["comma", "semicolon", "tab"],
        help="between columns (default: the library's export_separator setting, else comma); "
        "semicolon also writes decimal commas, as Excel reads in German or French",
    )
    when = "today, yesterday, YYYY-MM-DD or 'YYYY-MM-DD HH:MM', local time"
    p.add_argument(
        "--on", metavar="DAY", help="only photos added that day (today, yesterday or YYYY-MM-DD)"
    )
    p.add_argument("--since", metavar="WHEN", help=f"only photos added since then ({when})")
    p.add_argument("--before", metavar="WHEN", help=f"only photos added before then ({when})")
    p.add_argument(
        "--folder", type=_path, metavar="DIR", help="only photos from this folder (at any depth)"
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("status", help="what the library holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "check", help="check the library for damage (database, index, models, thumbnails)"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="fix what the stored data allows (rebuild the index, restore models, thumbnails)",
    )
    p.add_argument(
        "--deep", action="store_true", help="also decode thumbnails and compare index vectors"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "backups",
        help="list the database backups (taken when the library closes after a change; "
        "'check --repair' puts back the newest when the database is damaged)",
    )
    p.add_argument("--now", action="store_true", help="take a backup now")
    p.set_defaults(func=cmd_backups)

    p = sub.add_parser("products", help="find products by SKU or name")
    p.add_argument("text", nargs="?", default="")
    p.add_argument("--category")
    p.add_argument("--supplier")
    p.add_argument(
        "--limit",
        type=_whole(0, 10_000_000),
        default=200,
        metavar="N",
        help="list at most N products, and count the rest (default 200; 0 lists every one)",
    )
    p.set_defaults(func=cmd_products)

    p = sub.add_parser("models", help="list, install, activate or remove encoder model versions")
    p.add_argument("--install", type=_path, metavar="DIR", help="model folder (ONNX + manifest)")
    p.add_argument(
        "--activate",
        metavar="VERSION",
        help="switch to this version (re-embeds the catalog; safe to interrupt)",
    )
    p.add_argument(
        "--remove",
        metavar="VERSION",
        action="append",
        help="delete a version not in use, with its stored vectors (not the bundled model)",
    )
    p.add_argument(
        "--verbose", action="store_true", help="also show how each version fared in the gate"
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("eval", help="measure match quality on a labelled dataset folder")
    p.add_argument("dataset", type=_path, help="folder with catalog.csv and truth.csv")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--per-sku", action="store_true", help="also report metrics per SKU")
    p.add_argument(
        "--train",
        type=_path,
        metavar="TRAIN.csv",
        help="photo,sku rows (paths relative to the CSV) to confirm first, then train on",
    )
    p.add_argument(
        "--no-train",
        action="store_true",
        help="with --train: confirm only (instant memory), do not train a model",
    )
    p.add_argument(
        "--adapt",
        action="store_true",
        help="without --train: train on the catalog alone (no confirmations) before evaluating",
    )
    p.add_argument(
        "--online",
        action="store_true",
        help="match truth.csv in file order and confirm each photo right after, as staff do "
        "(later photos can match earlier ones); default: none of them is ever seen",
    )
    _add_training_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "train",
        help="learn from the catalog and confirmed photos; activate the result only if better",
    )
    p.add_argument(
        "--no-activate",
        action="store_true",
        help="install and gate the new model, but leave the active one in place",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_training_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="run the bundled demo catalog end to end")
    p.add_argument("--output", type=_path, default=Path("demo-inventory.csv"))
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if sys.stdout is None:  # started with standard output closed ('>&-'): nowhere to answer
        print(
            "shopmatch: error: standard output is closed, so nothing could be said; "
            "send it to /dev/null instead to discard it",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if isinstance(sys.stdout, io.TextIOWrapper):  # a name a legacy code page cannot spell
        sys.stdout.reconfigure(errors="replace")  # prints as '?' rather than ending the run
    bar = _Bar(enabled=not args.quiet and sys.stderr.isatty())
    try:
        return int(args.func(args, bar))
    except KeyboardInterrupt:
        bar.close()
        # eval works in a throw-away library: nothing of it is kept.
        kept = "nothing was kept" if args.func is cmd_eval else "work done so far is saved"
        print(f"shopmatch: interrupted; {kept}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # 'shopmatch status | head -3': the reader had enough
        # Python would complain again when it flushes stdout at exit: point it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # one clear line for the user, not a traceback
        bar.close()
        from engine.errors import describe

        print(f"shopmatch: error: {describe(exc)}", file=sys.stderr)
        return EXIT_ERROR


def run() -> None:
    """The ``shopmatch`` command: ``main``, then an exit a late Ctrl-C cannot spoil."""
    code = main()

    def leave(signum: int, frame: object) -> None:
        # The work is done and the library closed; interpreter shutdown (torch's and the
        # thread pools' exit hooks) can take a moment, and a Ctrl-C landing there printed a
        # KeyboardInterrupt traceback from an atexit callback. End quietly instead.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(130)

    signal.signal(signal.SIGINT, leave)
    sys.exit(code)


if __name__ == "__main__":
    run()
