"""Crash-consistency harness: SIGKILL real ``shopmatch`` processes at random points.

Three operations, each on its own library under a work folder:

* ``import``: ``shopmatch import`` of a generated catalog, killed at a random moment; when a
  run finishes unkilled, the library is wiped so later kills land mid-import again.
* ``decide``: a shell loop of real ``shopmatch match`` / ``confirm`` / ``no-match`` / ``undo``
  processes (stdout unbuffered), whose process group is killed at a random moment.
* ``activate``: ``shopmatch models --activate`` switching between two encoders, killed while
  it re-embeds the catalog (the target model's embeddings are dropped before each run so there
  is always work to interrupt).

After every kill the library must open, ``check_library`` must find no damage (notes such as
"index out of date" are allowed: derived files lag the database by design), every decision a
killed process printed as recorded must be in the database, and ``check --repair`` must leave
it fully clean. Prints a summary table and writes it as JSON with ``--json``.

    nice -n 5 .venv/bin/python bench/crash_harness.py --work /tmp/crash --kills 210
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from conftest import write_catalog, write_photos  # noqa: E402
from engine.check import check_library  # noqa: E402
from engine.library import Library  # noqa: E402
from engine.manifest import ModelManifest  # noqa: E402
from engine.resources import bundled_model_dir  # noqa: E402

DECIDED = re.compile(r"^photo (\d+): (confirmed|marked no match)(?: ([^\s,]+))?", re.M)
ACTIONS = {"confirmed": "confirm", "marked no match": "no_match"}  # as the CLI says them
UNDID = re.compile(r"^undid (?:confirm|no match) of photo (\d+)(?: \((\S+)\))?", re.M)


@dataclass
class OpStats:
    kills: int = 0
    completed: int = 0  # runs that finished before the kill time
    reported: int = 0  # decisions printed as recorded by killed or finished processes
    lost: int = 0
    damaged: int = 0  # kills after which check found an error (must be 0)
    notes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}


def cli(lib_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "engine", "--quiet", "--library", str(lib_dir), *args]


def import_cmd(lib_dir: Path, cat: Path) -> list[str]:
    """``shopmatch import`` of a catalog made by ``write_catalog``."""
    return cli(lib_dir, "import", str(cat / "images"), "--sheet", str(cat / "sheet.csv"))


def run_cli(cmd: list[str]) -> None:
    """Set-up step that must not be killed and must succeed."""
    subprocess.run(cmd, cwd=REPO, env=_env(), check=True, capture_output=True)


def run_and_kill(cmd: list[str] | str, delay: float, *, shell: bool = False) -> tuple[str, bool]:
    """Start ``cmd`` in its own process group, SIGKILL the group after ``delay`` seconds
    unless it finished; returns (stdout so far, whether it was killed)."""
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=_env(),
        shell=shell,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=delay)
        return out.decode("utf-8", "replace"), False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return out.decode("utf-8", "replace"), True


def verify(lib_dir: Path, stats: OpStats, reported: Counter[tuple[int, str, str]]) -> None:
    """Open, check (must find no damage), compare decisions, repair, check again."""
    try:
        with Library(lib_dir) as lib:
            first = check_library(lib)
            for f in first.findings:
                stats.notes[f"{f.area}: {re.sub(r'[0-9]+', 'N', f.message)[:70]}"] += 1
            if not first.ok:
                stats.damaged += 1
                stats.failures.extend(f.line() for f in first.unrepaired)
            stored = Counter(
                (int(r[0]), str(r[1]), str(r[2] or ""))
                for r in lib.db.execute("SELECT photo_id, action, sku FROM decisions")
            )
            lost = reported - stored
            stats.lost += sum(lost.values())
            if lost:
                stats.failures.append(f"lost decisions: {dict(lost)}")
            second = check_library(lib, repair=True)
            again = check_library(lib)
            if not second.ok or any(f.severity == "error" for f in again.findings):
                stats.failures.append("repair did not leave a clean library")
    except Exception as exc:  # the library must always open
        stats.damaged += 1
        stats.failures.append(f"library did not open: {type(exc).__name__}: {exc}")


def op_import(work: Path, kills: int, rng: random.Random, n_images: int) -> OpStats:
    stats = OpStats()
    cat = work / "import-catalog"
    if not (cat / "sheet.csv").exists():
        write_catalog(cat, n_images)
    lib_dir = work / "import-lib"
    shutil.rmtree(lib_dir, ignore_errors=True)
    while stats.kills < kills:
        _, killed = run_and_kill(import_cmd(lib_dir, cat), rng.uniform(0.3, 8.0))
        if not killed:
            stats.completed += 1
            shutil.rmtree(lib_dir, ignore_errors=True)
            continue
        stats.kills += 1
        verify(lib_dir, stats, Counter())
    return stats


def op_decide(work: Path, kills: int, rng: random.Random, n_photos: int) -> OpStats:
    stats = OpStats()
    cat, lib_dir = work / "decide-catalog", work / "decide-lib"
    if not lib_dir.exists():
        write_catalog(cat, 24)
        run_cli(import_cmd(lib_dir, cat))
    photos = write_photos(work / "photos", [i % 24 for i in range(n_photos)])
    reported: Counter[tuple[int, str, str]] = Counter()
    while stats.kills < kills:
        steps = []
        for _ in range(6):
            p = rng.choice(photos)
            steps.append(" ".join(cli(lib_dir, "match", str(p), "--top", "3")))
            roll = rng.random()
            if roll < 0.7:
                steps.append(" ".join(cli(lib_dir, "confirm", str(p))))
            elif roll < 0.85:
                steps.append(" ".join(cli(lib_dir, "no-match", str(p))))
            else:
                steps.append(" ".join(cli(lib_dir, "undo")))
        out, killed = run_and_kill("; ".join(steps), rng.uniform(0.3, 9.0), shell=True)
        for pid, action, sku in DECIDED.findall(out):
            reported[(int(pid), ACTIONS[action], sku or "")] += 1
            stats.reported += 1
        for pid, sku in UNDID.findall(out):
            reported[(int(pid), "undo", sku)] += 1  # an undo row copies the undone SKU
            stats.reported += 1
        if not killed:
            stats.completed += 1
            continue
        stats.kills += 1
        verify(lib_dir, stats, reported)
    return stats


def op_activate(work: Path, kills: int, rng: random.Random) -> OpStats:
    stats = OpStats()
    cat, lib_dir = work / "activate-catalog", work / "activate-lib"
    second = bundled_model_dir("mobilenet-v2")
    versions = [ModelManifest.load(bundled_model_dir()).version, ModelManifest.load(second).version]
    if not lib_dir.exists():
        write_catalog(cat, 60)
        run_cli(import_cmd(lib_dir, cat))
        run_cli(cli(lib_dir, "models", "--install", str(second)))
    while stats.kills < kills:
        with sqlite3.connect(lib_dir / "shopmatch.db") as conn:
            active = conn.execute("SELECT version FROM models WHERE active = 1").fetchone()[0]
            target = versions[1] if active == versions[0] else versions[0]
            if rng.random() < 0.8:  # usually leave work to interrupt: re-embed from scratch
                conn.execute("DELETE FROM embeddings WHERE model_version = ?", [target])
        _, killed = run_and_kill(cli(lib_dir, "models", "--activate", target), rng.uniform(0.3, 7))
        if not killed:
            stats.completed += 1
            continue
        stats.kills += 1
        verify(lib_dir, stats, Counter())
        with sqlite3.connect(lib_dir / "shopmatch.db") as conn:
            now = conn.execute("SELECT version FROM models WHERE active = 1").fetchone()[0]
        if now not in versions:
            stats.failures.append(f"active model is {now!r}")
    return stats


def cli_check(lib_dir: Path) -> str:
    """The real ``shopmatch check`` command, once per operation at the end."""
    proc = subprocess.run(
        cli(lib_dir, "check"), cwd=REPO, env=_env(), capture_output=True, text=True
    )
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()


def run(work: Path, kills: int, seed: int, n_images: int, n_photos: int) -> dict[str, object]:
    """Spread ``kills`` over the three operations (import 30%, decide 45%, activate 25%)."""
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    plan = {
        "import": round(kills * 0.30),
        "decide": round(kills * 0.45),
    }
    plan["activate"] = kills - plan["import"] - plan["decide"]
    results: dict[str, object] = {}
    started = time.perf_counter()
    for name, n in plan.items():
        t0 = time.perf_counter()
        if name == "import":
            st = op_import(work, n, rng, n_images)
        elif name == "decide":
            st = op_decide(work, n, rng, n_photos)
        else:
            st = op_activate(work, n, rng)
        lib_dir = work / f"{name}-lib"
        results[name] = {
            "kills": st.kills,
            "completed_runs": st.completed,
            "decisions_reported": st.reported,
            "decisions_lost": st.lost,
            "kills_with_damage": st.damaged,
            "seconds": round(time.perf_counter() - t0, 1),
            "findings_after_kill": dict(st.notes.most_common()),
            "failures": st.failures[:20],
            "cli_check": cli_check(lib_dir) if lib_dir.exists() else "",
        }
    results["total"] = {
        "kills": sum(r["kills"] for r in results.values()),  # type: ignore[index]
        "decisions_lost": sum(r["decisions_lost"] for r in results.values()),  # type: ignore[index]
        "kills_with_damage": sum(r["kills_with_damage"] for r in results.values()),  # type: ignore[index]
        "seconds": round(time.perf_counter() - started, 1),
    }
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/shopmatch-crash"))
    ap.add_argument("--kills", type=int, default=210)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--images", type=int, default=120, help="catalog size of the import test")
    ap.add_argument("--photos", type=int, default=40)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    results = run(args.work, args.kills, args.seed, args.images, args.photos)
    print(f"{'operation':<10} {'kills':>5} {'done':>5} {'reported':>8} {'lost':>5} {'damaged':>7}")
    for name in ("import", "decide", "activate"):
        r = results[name]
        print(
            f"{name:<10} {r['kills']:>5} {r['completed_runs']:>5} "  # type: ignore[index]
            f"{r['decisions_reported']:>8} {r['decisions_lost']:>5} "  # type: ignore[index]
            f"{r['kills_with_damage']:>7}"  # type: ignore[index]
        )
        for line in r["failures"]:  # type: ignore[index]
            print("   FAIL", line)
    print(json.dumps(results["total"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    total = results["total"]
    return 0 if not total["decisions_lost"] and not total["kills_with_damage"] else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
