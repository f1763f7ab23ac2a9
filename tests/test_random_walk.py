"""A seeded random walk (model-based test) over the engine facade (review 51; the bugs it
found are in test_memory_paths_and_restores.py). The walk keeps a reference model of what each
photo's live decision is, what the catalog holds, which confirmed photos instant memory
remembers and so which keys the vector index holds; after every random step it compares the
library with it."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from conftest import photo_of, product_image
from engine import backups
from engine.check import check_library
from engine.decisions import DecisionError
from engine.library import Library
from engine.resources import bundled_model_dir

N0 = 5  # products in the first catalog
WALK_STEPS = 150


@dataclass
class Dec:
    id: int
    pid: int
    action: str
    sku: str | None
    live: bool = True


@dataclass
class Photo:
    pid: int
    path: Path  # as the library records it
    sha_key: str  # our own key: "<product>-<take>"
    matched: bool = True
    file: Path | None = None  # where its content is on disk (None: nowhere)
    moved: bool = False

    def __post_init__(self) -> None:
        if self.file is None:
            self.file = self.path


@dataclass
class Snapshot:
    listed: dict[str, int]
    withdrawn: set[str]
    products: set[str]
    photos: dict[str, tuple[int, Path]]
    max_dec: int
    active: str = ""
    installed: frozenset = frozenset()


class Walk:
    def __init__(self, root: Path, seed: int, log: list[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.root = root
        self.cat = root / "supplier"
        self.pics = root / "photos"
        self.path = root / "lib"
        self.pics.mkdir(parents=True)
        (self.cat / "images").mkdir(parents=True)
        self.listed: dict[str, int] = {}  # sku -> picture seed
        self.withdrawn: set[str] = set()
        self.products: set[str] = set()  # every product row
        self.next_product = N0
        self.photos: dict[str, Photo] = {}  # key -> photo
        self.decs: list[Dec] = []
        self.memory = True
        self.counter = 0
        self.snapshots: dict[str, Snapshot] = {}
        self.log = log if log is not None else []
        self.lib = Library(self.path)
        self.lib.local_features = self.rng.random() < 0.5
        self.lf = self.lib.local_features
        self.active = self.lib.model_version
        self.installed = {self.active}
        self.last_pid_for_undo_state: dict[int, object] = {}
        self.imported = False
        self.pictured: set[str] = set()  # products with a supplier picture in the library

    # -- catalog ------------------------------------------------------------------------
    def write_sheet(self) -> Path:
        sheet = self.cat / "sheet.csv"
        with open(sheet, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["SKU", "Product name", "Image"])
            for sku in sorted(self.listed):
                w.writerow([sku, f"Product {sku}", f"images/{sku}.jpg"])
        return sheet

    def picture(self, sku: str, seed: int) -> None:
        p = self.cat / "images" / f"{sku}.jpg"
        product_image(seed).save(p, quality=92)
        self.counter += 1
        os.utime(p, (1_700_000_000 + self.counter, 1_700_000_000 + self.counter))

    def do_import(self) -> None:
        sheet = self.write_sheet()
        self.lib.import_catalog(self.cat, sheet, removals="remove")
        # only products whose picture this import removed are withdrawn
        gone = self.pictured - set(self.listed)
        self.pictured = set(self.listed)
        self.withdrawn |= gone
        self.withdrawn -= set(self.listed)
        self.products |= set(self.listed)
        self.imported = True

    def op_import_first(self) -> None:
        for i in range(N0):
            sku = f"SKU-{i:03d}"
            self.listed[sku] = i
            self.picture(sku, i)
        self.do_import()

    def op_import_remove(self) -> None:
        if len(self.listed) <= 2:
            return self.op_import_add()
        sku = self.rng.choice(sorted(self.listed))
        self.log.append(f"import_remove {sku}")
        del self.listed[sku]
        (self.cat / "images" / f"{sku}.jpg").unlink()
        self.do_import()

    def op_import_replace(self) -> None:
        sku = self.rng.choice(sorted(self.listed))
        seed = 500 + self.rng.randrange(1000)
        self.log.append(f"import_replace {sku} {seed}")
        self.listed[sku] = seed
        self.picture(sku, seed)
        self.do_import()

    def op_import_add(self) -> None:
        back = sorted(self.withdrawn)
        if back and self.rng.random() < 0.5:
            sku = self.rng.choice(back)
        else:
            sku = f"SKU-{self.next_product:03d}"
            self.next_product += 1
        seed = int(sku[4:])
        self.log.append(f"import_add {sku}")
        self.listed[sku] = seed
        self.picture(sku, seed)
        self.do_import()

    # -- photos -------------------------------------------------------------------------
    def new_photo_file(self) -> tuple[str, Path]:
        skus = sorted(self.listed) + sorted(self.withdrawn)
        if self.rng.random() < 0.15:
            seed, tag = 9000 + self.rng.randrange(100), "x"  # not in the catalog
        else:
            sku = self.rng.choice(skus)
            seed, tag = self.listed.get(sku, int(sku[4:])), sku
        take = self.rng.randrange(10_000)
        key = f"{tag}-{seed}-{take}"
        if key in self.photos:
            return self.new_photo_file()
        self.counter += 1
        p = self.pics / f"IMG_{self.counter:04d}.jpg"
        photo_of(product_image(seed), take).save(p, quality=88)
        return key, p

    def _match(self, paths: list[Path]) -> list:
        return list(self.lib.match(paths))

    def op_match_new(self) -> None:
        files = [self.new_photo_file() for _ in range(self.rng.randint(1, 3))]
        self.log.append(f"match_new {[p.name for _, p in files]}")
        res = self._match([p for _, p in files])
        assert len(res) == len(files)
        for (key, p), r in zip(files, res, strict=True):
            assert r.error is None, r.error
            assert r.photo_id is not None
            assert r.photo_id not in {ph.pid for ph in self.photos.values()}, "id reused"
            self.photos[key] = Photo(r.photo_id, p, key)

    def pick_photo(self, with_file: bool = False) -> Photo | None:
        keys = sorted(k for k, p in self.photos.items() if p.file is not None or not with_file)
        if not keys:
            return None
        return self.photos[self.rng.choice(keys)]

    def op_overwrite(self) -> None:
        """A camera that restarts its counter: a new photo saved under an old one's name."""
        ph = self.pick_photo(with_file=True)
        if ph is None:
            return
        key, tmp = self.new_photo_file()
        at = ph.file
        tmp.replace(at)
        for other in self.photos.values():
            if other.file == at:
                other.file = None
        self.log.append(f"overwrite {ph.pid} at {at.name}")
        (r,) = self._match([at])
        assert r.error is None and r.photo_id not in {p.pid for p in self.photos.values()}, r
        self.photos[key] = Photo(r.photo_id, at, key)

    def op_match_again(self) -> None:
        ph = self.pick_photo(with_file=True)
        if ph is None:
            return
        self.log.append(f"match_again {ph.pid}")
        self.match_file(ph, ph.file)

    def shares_path(self, ph: Photo) -> bool:
        # (not walked: a newer photo under an old one's file name moved away keeps the name's
        # reference in the library, see the report)
        return any(o.path == ph.path and o.pid != ph.pid for o in self.photos.values())

    def match_file(self, ph: Photo, file: Path) -> None:
        """Match ``file`` (holding ph's content): the same photo; a copy when the path the
        library has for it still exists, else moved there."""
        (r,) = self._match([file])
        assert r.photo_id == ph.pid, (r, ph)
        if file == ph.path:
            assert r.duplicate_of is None, (r, ph)
        elif ph.path.exists():
            assert r.duplicate_of == str(ph.path), (r, ph)
        else:
            assert r.duplicate_of is None, (r, ph)
            ph.path = file
            ph.moved = True

    def op_copy(self) -> None:
        ph = self.pick_photo(with_file=True)
        if ph is None or self.shares_path(ph):
            return
        self.counter += 1
        copy = self.pics / f"COPY_{self.counter:04d}.jpg"
        shutil.copyfile(ph.file, copy)
        self.log.append(f"copy {ph.pid} -> {copy.name}")
        self.match_file(ph, copy)

    def op_move(self) -> None:
        ph = self.pick_photo(with_file=True)
        if ph is None or self.shares_path(ph):
            return
        self.counter += 1
        sub = self.pics / f"moved{self.counter}"
        sub.mkdir()
        new = sub / ph.file.name
        ph.file.rename(new)
        ph.file = new
        self.log.append(f"move {ph.pid} -> {new.relative_to(self.pics)}")
        self.match_file(ph, new)

    # -- decisions ----------------------------------------------------------------------
    def live(self, pid: int | None = None) -> list[Dec]:
        return [d for d in self.decs if d.live and (pid is None or d.pid == pid)]

    def state(self, pid: int) -> tuple[str, str | None]:
        for d in reversed(self.live(pid)):
            if d.action in ("confirm", "no_match"):
                return ("confirmed" if d.action == "confirm" else "no_match", d.sku)
        return ("suggested", None)

    def rejected(self, pid: int) -> set[str]:
        return {d.sku for d in self.live(pid) if d.action == "reject"}  # type: ignore[misc]

    def _record(self, pid: int, action: str, sku: str | None, got) -> None:
        st = self.state(pid)
        in_force = [d for d in self.live(pid) if d.action in ("confirm", "no_match")]
        if (action == "confirm" and st == ("confirmed", sku)) or (
            action == "no_match" and st[0] == "no_match"
        ):
            assert got.id == in_force[-1].id, (got, in_force[-1])  # nothing new recorded
            return
        if action == "reject" and sku in self.rejected(pid):
            return
        assert got.id > max((d.id for d in self.decs), default=0), (got, self.decs[-3:])
        assert (got.photo_id, got.action, got.sku) == (pid, action, sku), got
        self.decs.append(Dec(got.id, pid, action, sku))

    def op_confirm_top(self) -> None:
        ph = self.pick_photo()
        if ph is None:
            return
        rej = self.rejected(ph.pid)
        ranked = [s.sku for s in self.lib.suggestions(ph.pid)]
        want = next((s for s in ranked if s not in rej), None)
        self.log.append(f"confirm_top {ph.pid} (want {want})")
        if want is None:
            try:
                self.lib.confirm(ph.pid)
            except DecisionError:
                return
            raise AssertionError("confirmed with nothing to confirm")
        got = self.lib.confirm(ph.pid)
        assert got.sku == want, (got, want)
        self._record(ph.pid, "confirm", want, got)

    def op_confirm_sku(self) -> None:
        ph = self.pick_photo()
        if ph is None or not self.products:
            return
        sku = self.rng.choice(sorted(self.products))
        self.log.append(f"confirm {ph.pid} {sku}")
        got = self.lib.confirm(ph.pid, sku)
        self._record(ph.pid, "confirm", sku, got)

    def op_reject(self) -> None:
        ph = self.pick_photo()
        if ph is None or not self.products:
            return
        ranked = [s.sku for s in self.lib.suggestions(ph.pid)]
        pool = ranked[:2] if ranked and self.rng.random() < 0.7 else sorted(self.products)
        sku = self.rng.choice(pool)
        self.log.append(f"reject {ph.pid} {sku}")
        if self.state(ph.pid) == ("confirmed", sku):
            try:
                self.lib.reject(ph.pid, sku)
            except DecisionError:
                return
            raise AssertionError("rejected a confirmed SKU")
        got = self.lib.reject(ph.pid, sku)
        self._record(ph.pid, "reject", sku, got)

    def op_no_match(self) -> None:
        ph = self.pick_photo()
        if ph is None:
            return
        self.log.append(f"no_match {ph.pid}")
        got = self.lib.no_match(ph.pid)
        self._record(ph.pid, "no_match", None, got)

    def op_undo_last(self) -> None:
        live = self.live()
        before = {ph.pid: self.state(ph.pid) for ph in self.photos.values()}
        self.log.append("undo_last")
        got = self.lib.undo()
        if not live:
            assert got is None
            return
        assert got is not None and got.id == live[-1].id, (got, live[-1])
        live[-1].live = False
        self.decs.append(Dec(-1, got.photo_id, "undo", got.sku, live=False))
        self._prev_state_check(got.photo_id, before)

    def _prev_state_check(self, pid: int, before: dict) -> None:
        # the state the photo had before the undone decision is back
        got = self.lib.photo_state(pid).status
        assert got == self.state(pid)[0] or (got, self.state(pid)[0]) == ("pending", "suggested")

    def op_undo_photo(self) -> None:
        ph = self.pick_photo()
        if ph is None:
            return
        live = self.live(ph.pid)
        self.log.append(f"undo {ph.pid}")
        got = self.lib.undo(ph.pid)
        if not live:
            assert got is None
            return
        assert got is not None and got.id == live[-1].id, (got, live[-1])
        live[-1].live = False

    def op_undo_then_redo(self) -> None:
        """Confirm, undo: the state before the confirm is back exactly."""
        ph = self.pick_photo()
        if ph is None or not self.products:
            return
        before = self.lib.photo_state(ph.pid)
        sku = self.rng.choice(sorted(self.products))
        if self.state(ph.pid) == ("confirmed", sku):
            return
        self.log.append(f"confirm+undo {ph.pid} {sku}")
        got = self.lib.confirm(ph.pid, sku)
        self._record(ph.pid, "confirm", sku, got)
        u = self.lib.undo()
        assert u is not None and u.id == got.id
        self.decs[-1].live = False
        after = self.lib.photo_state(ph.pid)
        assert after == before, (before, after)

    # -- settings -----------------------------------------------------------------------
    def op_memory(self) -> None:
        self.memory = not self.memory
        self.log.append(f"memory {self.memory}")
        self.lib.instant_memory = self.memory

    def op_model(self) -> None:
        from engine.manifest import ModelManifest

        other = bundled_model_dir().parent / "mobilenet-v2"
        mine = ModelManifest.load(bundled_model_dir()).version
        theirs = ModelManifest.load(other).version
        installed = {str(m["version"]) for m in self.lib.models()}
        active = self.lib.model_version
        assert (installed, active) == (self.installed, self.active)
        if theirs not in installed:
            self.log.append("install mobilenet")
            self.lib.install_model(other)
            self.installed.add(theirs)
        elif (
            active == theirs
            or self.rng.random() < 0.5
            # (not walked: a backup from before a removal names a model without files)
            or any(theirs in snap.installed for snap in self.snapshots.values())
        ):
            target = mine if active == theirs else theirs
            self.log.append(f"activate {target}")
            self.lib.activate_model(target)
            self.active = target
        else:
            self.log.append("remove mobilenet")
            self.lib.remove_model(theirs)
            self.installed.discard(theirs)

    def op_lf(self) -> None:
        self.lf = not self.lf
        self.log.append(f"local_features {self.lf}")
        self.lib.local_features = self.lf

    # -- lifecycle ----------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return Snapshot(
            dict(self.listed),
            set(self.withdrawn),
            set(self.products),
            {k: (p.pid, p.path) for k, p in self.photos.items()},
            max((d.id for d in self.decs), default=0),
            self.active,
            frozenset(self.installed),
        )

    def note_backups(self) -> None:
        for b in backups.list_backups(self.path):
            self.snapshots.setdefault(b.path.name, self.snapshot())

    def op_reopen(self) -> None:
        self.log.append("reopen")
        before = self.facts()
        self.lib.close()
        self.note_backups()
        self.lib = Library(self.path)
        self.note_backups()
        after = self.facts()
        assert before == after, diff(before, after)

    def op_crash(self) -> None:
        self.log.append("crash")
        before = self.facts()
        self.lib.db.close()
        self.lib._lock.release()  # type: ignore[union-attr]
        self.lib = Library(self.path)
        self.note_backups()
        after = self.facts()
        assert before == after, diff(before, after)

    def op_rebuild(self) -> None:
        self.log.append("rebuild_index")
        before = self.facts()
        self.lib.rebuild_index()
        assert before == self.facts()

    def op_backup(self) -> None:
        self.log.append("take_backup")
        self.lib.take_backup()
        self.note_backups()

    def op_restore(self) -> None:
        if not self.imported:
            return
        good = backups.newest_intact(self.path)
        if good is None:
            return
        snap = self.snapshots[good.path.name]
        self.log.append(f"restore_backup {good.path.name} (decisions <= {snap.max_dec})")
        self.lib.restore_backup()
        # The backup's catalog; every decision read back with the photos they name.
        decided_after = {d.pid for d in self.decs if d.id > snap.max_dec}
        keep = {}
        for key, ph in self.photos.items():
            if key in snap.photos:
                ph.path = snap.photos[key][1]
                keep[key] = ph
            elif ph.pid in decided_after:
                keep[key] = ph
        self.photos = keep
        named = {d.sku for d in self.decs if d.sku and d.id > snap.max_dec}
        self.active = snap.active
        # model versions installed since keep their folders: registered again (inactive)
        self.installed = set(snap.installed) | self.installed
        assert self.lib.model_version == self.active
        self.listed = dict(snap.listed)
        self.pictured = set(snap.listed)
        # a product the backup lacks comes back as the decisions' file had it
        self.withdrawn = set(snap.withdrawn) | ((named - snap.products) & self.withdrawn)
        self.products = set(snap.products) | named
        # the supplier's folder as it was then (the next import reads it again)
        for sku, seed in self.listed.items():
            self.picture(sku, seed)
        self.note_backups()

    # -- checks -------------------------------------------------------------------------
    def facts(self) -> dict:
        lib = self.lib
        st = lib.status()
        states = {}
        for ph in self.photos.values():
            s = lib.photo_state(ph.pid)
            states[ph.pid] = (s.status, s.decision.sku if s.decision else None)
        keys = sorted(int(k) for k in lib.index.keys())  # noqa: SIM118 (a VectorIndex, not a dict)
        return {
            "states": states,
            "status": (
                st.products,
                st.catalog_images,
                st.remembered,
                st.photos,
                st.confirmed,
                st.no_match,
                st.decisions,
                st.index_size,
            ),
            "keys": keys,
        }

    def expected_refs(self) -> dict[int, str]:
        if not self.memory:
            return {}
        out: dict[int, str] = {}
        newest: dict[str, int] = {}
        for ph in sorted(self.photos.values(), key=lambda p: p.pid):
            status, sku = self.state(ph.pid)
            if status == "confirmed" and sku not in self.withdrawn:
                older = newest.get(str(ph.path))
                if older is not None:
                    del out[older]  # one reference per file name: the newest photo's
                out[ph.pid] = sku  # type: ignore[assignment]
                newest[str(ph.path)] = ph.pid
        return out

    def check_model(self) -> None:
        lib = self.lib
        # states
        for ph in self.photos.values():
            s = lib.photo_state(ph.pid)
            want = self.state(ph.pid)
            got = (s.status, s.decision.sku if s.decision else None)
            if got == ("pending", None):  # its model's suggestions went with the model
                got = ("suggested", None)
            assert got == want, f"photo {ph.pid}: {got} != model {want}"
        # catalog
        rows = lib.db.execute(
            "SELECT id, sku FROM catalog_images WHERE origin = 'catalog'"
        ).fetchall()
        cat_skus = sorted(r[1] for r in rows)
        assert cat_skus == sorted(self.listed), (cat_skus, sorted(self.listed))
        withdrawn = {
            r[0] for r in lib.db.execute("SELECT sku FROM products WHERE withdrawn_at IS NOT NULL")
        }
        assert withdrawn == self.withdrawn, (withdrawn, self.withdrawn)
        refs = {
            int(r[1]): (int(r[0]), str(r[2]))
            for r in lib.db.execute(
                "SELECT id, photo_id, sku FROM catalog_images WHERE origin = 'confirmed'"
            )
        }
        want_refs = self.expected_refs()
        assert {p: s for p, (_i, s) in refs.items()} == want_refs, (refs, want_refs)
        # the index: exactly those, each with its stored vector
        want_keys = sorted([int(r[0]) for r in rows] + [i for i, _s in refs.values()])
        index = lib.index
        keys = sorted(int(k) for k in index.keys())  # noqa: SIM118 (a VectorIndex, not a dict)
        assert keys == want_keys, f"index keys {keys} != expected {want_keys}"
        ikeys, ivecs = index.matrix()
        stored = dict(
            lib.db.execute(
                "SELECT image_id, vector FROM embeddings WHERE model_version = ?",
                [lib.model_version],
            ).fetchall()
        )
        for k, v in zip(ikeys.tolist(), ivecs, strict=True):
            assert np.allclose(v, np.frombuffer(stored[int(k)], np.float32), atol=1e-5), (
                f"index vector of {k} is not its stored one"
            )
        # counts
        st = lib.status()
        confirmed = sum(1 for ph in self.photos.values() if self.state(ph.pid)[0] == "confirmed")
        no_match = sum(1 for ph in self.photos.values() if self.state(ph.pid)[0] == "no_match")
        assert (st.confirmed, st.no_match, st.photos) == (confirmed, no_match, len(self.photos)), (
            st,
            confirmed,
            no_match,
            len(self.photos),
        )
        assert st.remembered == len(want_refs) and st.index_size == len(want_keys)
        assert st.products == len(self.products), (st.products, self.products)

    def check_search(self) -> None:
        """Searched with its own vector, a remembered photo finds its SKU first."""
        lib = self.lib
        for pid, sku in self.expected_refs().items():
            vec = lib.db.execute(
                "SELECT e.vector FROM embeddings e JOIN catalog_images c ON c.id = e.image_id "
                "WHERE c.photo_id = ? AND c.origin = 'confirmed' AND e.model_version = ?",
                [pid, lib.model_version],
            ).fetchone()
            assert vec is not None, f"photo {pid} remembered without a vector"
            keys, _ = lib.index.search(np.frombuffer(vec[0], np.float32), 1)
            top = lib.db.execute(
                "SELECT sku FROM catalog_images WHERE id = ?", [int(keys[0, 0])]
            ).fetchone()
            assert top is not None and top[0] == sku, (pid, sku, top)

    def check_export(self) -> None:
        for per in ("photo", "sku"):
            for undecided in (False, True) if per == "photo" else (False,):
                target = self.root / f"out-{per}-{undecided}.csv"
                n = self.lib.export_csv(target, per=per, include_undecided=undecided)
                text = target.read_text(encoding="utf-8-sig")
                rows = list(csv.DictReader(io.StringIO(text)))
                assert n == len(rows)
                if per == "photo":
                    got = sorted((r["photo"], r["status"], r["sku"]) for r in rows)
                    want = []
                    for ph in self.photos.values():
                        status, sku = self.state(ph.pid)
                        if status == "confirmed":
                            want.append((str(ph.path), "confirmed", sku))
                        elif status == "no_match":
                            want.append((str(ph.path), "no_match", ""))
                        elif undecided:
                            want.append((str(ph.path), "undecided", ""))
                    got = [
                        (p, "undecided", "") if s in ("suggested", "pending") else (p, s, k)
                        for p, s, k in got
                    ]
                    assert got == sorted(want), (got, sorted(want))
                else:
                    got = {r["sku"]: int(r["quantity"]) for r in rows}
                    want = {}
                    for ph in self.photos.values():
                        status, sku = self.state(ph.pid)
                        if status == "confirmed":
                            want[sku] = want.get(sku, 0) + 1
                    assert got == want, (got, want)

    def op_overview(self) -> None:
        from engine import overview

        self.log.append("overview")
        undecided = sorted(
            p.pid
            for p in self.photos.values()
            if self.state(p.pid)[0] not in ("confirmed", "no_match")
        )
        lim = self.rng.randint(1, 4)
        after = self.rng.choice([0, *undecided[:3]])
        upto = self.rng.choice([None, max((p.pid for p in self.photos.values()), default=0)])
        pages: list[int] = []
        off = 0
        while True:
            page = overview.undecided_photos(
                self.lib, limit=lim, offset=off, after=after, upto=upto
            )
            pages += [r.id for r in page]
            if len(page) < lim:
                break
            off += lim
        want = [p for p in undecided if p > after and (upto is None or p <= upto)]
        assert pages == want, (pages, want)
        assert overview.undecided_count(self.lib, after, upto) == len(want)
        in_force: dict[str, list[tuple[int, int]]] = {}
        for ph in self.photos.values():
            live = [d for d in self.live(ph.pid) if d.action in ("confirm", "no_match")]
            if live and live[-1].action == "confirm":
                in_force.setdefault(live[-1].sku, []).append((live[-1].id, ph.pid))
        for sku in sorted(self.products):
            lim = self.rng.randint(1, 3)
            recs, total = overview.newest_confirmed_photos(self.lib, sku, lim)
            ids = [pid for _d, pid in sorted(in_force.get(sku, []))]
            assert total == len(ids), (sku, total, ids)
            assert [r.id for r in recs] == ids[-lim:], (sku, recs, ids)

    def check_library(self) -> None:
        self.lib.flush()
        report = check_library(self.lib)
        if os.environ.get("R51_NOTES"):
            print("check:", [f.line() for f in report.findings])
        bad = [
            f.line()
            for f in report.findings
            if f.area in ("memory", "index", "embeddings") or f.severity == "error"
        ]
        assert not bad, bad

    # -- the walk -----------------------------------------------------------------------
    OPS: ClassVar[dict[str, int]] = {
        "match_new": 10,
        "match_again": 3,
        "copy": 2,
        "move": 2,
        "confirm_top": 10,
        "confirm_sku": 6,
        "reject": 5,
        "no_match": 4,
        "undo_last": 5,
        "undo_photo": 4,
        "undo_then_redo": 3,
        "memory": 2,
        "overwrite": 2,
        "overview": 2,
        "lf": 1,
        "model": 2,
        "reopen": 2,
        "crash": 3,
        "rebuild": 1,
        "backup": 2,
        "restore": 2,
        "import_remove": 1,
        "import_replace": 1,
        "import_add": 1,
        "export": 2,
        "check": 1,
    }

    def step(self) -> str:
        names = list(self.OPS)
        name = self.rng.choices(names, [self.OPS[n] for n in names])[0]
        if name == "export":
            self.log.append("export")
            self.check_export()
        elif name == "check":
            self.log.append("check")
            self.check_library()
            self.check_search()
        else:
            getattr(self, f"op_{name}")()
        self.check_model()
        return name

    def run(self, steps: int) -> None:
        self.op_import_first()
        self.log.append("import_first")
        self.check_model()
        for _ in range(steps):
            self.step()
        self.check_export()
        self.check_search()
        self.check_library()
        self.op_reopen()
        self.check_model()
        self.lib.close()


def diff(a: dict, b: dict) -> str:
    out = []
    for k in sorted(set(a) | set(b), key=str):
        if a.get(k) != b.get(k):
            out.append(f"{k}: {a.get(k)} != {b.get(k)}")
    return "; ".join(out)[:3000]


@pytest.mark.parametrize("seed", [3, 15, 20])
def test_random_walk_keeps_the_library_in_step_with_the_model(tmp_path: Path, seed: int) -> None:
    """About a hundred random operations (imports, matching, decisions, undo, settings,
    model switches, exports, backups put back, clean and unclean exits, index rebuilds) on one
    library; after every step each photo's state, the counts, the catalog, the remembered
    photos and the index's keys and vectors agree with the reference model; exports, search,
    ``check`` and reopening are checked along the way and at the end."""
    log: list[str] = []
    walk = Walk(tmp_path, seed, log)
    try:
        walk.run(WALK_STEPS)
    except BaseException:
        print("\n".join(log[-25:]))
        raise
