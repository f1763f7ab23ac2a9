"""``shopmatch-desktop --self-test``: prove that an installed copy works, without a window.

A frozen build can start and still be broken (a missing encoder file, Qt plugin or native
library only shows when that code path runs), so the installer's smoke test, support staff
and users run this instead of clicking through the app. It exercises the real code paths
through the engine's public API: open a temporary library, import the bundled demo catalog,
match a demo photo (as JPEG and as HEIC, the iPhone format) and check the top suggestion
against the demo's ground truth; read the demo sheet saved as an Excel workbook; render an
icon and read a photo through Qt (offscreen); and, unless told not to, build the learning
stack's encoder from its shipped ImageNet weights and export it to ONNX. It writes only to
a temporary folder and removes it. Exit code 0 when every check passes; otherwise 1, with
the failed check and the reason on stderr.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1
SCOPES = ("all", "matching")  # "matching" skips the learning check (torch), for quick runs

# A demo photo the bundled encoder matches with a wide margin (similarity 0.54 vs 0.25 for
# the runner-up), so the check fails only when something is really broken.
SELFTEST_PHOTO = "photos/Banana_001.jpg"
ONNX_TOLERANCE = 1e-3  # exported vs torch embeddings (unit vectors), as in engine.learning


class SelfTestError(RuntimeError):
    """A check failed; the message says what was expected and what was found."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SelfTestError(message)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class _Run:
    """State shared by the checks: the temporary folder and what earlier checks found."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.demo = Path()
        self.photo = Path()
        self.expected_sku = ""

    # -- checks ------------------------------------------------------------------------------
    def resources(self) -> str:
        from engine.resources import bundled_model_dir, demo_dir, resources_dir

        root = resources_dir()
        _require(root.is_dir(), f"resources folder not found: {root}")
        self.demo = demo_dir()
        for name in ("catalog.csv", "truth.csv", "catalog", "photos"):
            _require((self.demo / name).exists(), f"demo catalog incomplete: no {self.demo / name}")
        model = bundled_model_dir()
        for name in ("manifest.json", "model.onnx"):
            _require((model / name).is_file(), f"bundled encoder incomplete: no {model / name}")
        truth = {row["photo"]: row["sku"] for row in _read_csv(self.demo / "truth.csv")}
        _require(SELFTEST_PHOTO in truth, f"{SELFTEST_PHOTO} is not listed in truth.csv")
        self.photo, self.expected_sku = self.demo / SELFTEST_PHOTO, truth[SELFTEST_PHOTO]
        _require(self.photo.is_file(), f"demo photo missing: {self.photo}")
        frozen = " (frozen app)" if getattr(sys, "frozen", False) else ""
        return f"{root}{frozen}"

    def library(self) -> str:
        from engine.library import Library

        path = self.work / "Library"
        with Library(path) as lib:
            _require(lib.path == path, f"library opened at {lib.path}, expected {path}")
            status = lib.status()
            _require(status.products == 0, f"a new library has {status.products} products")
            model = status.model_version
        _require(path.is_dir(), f"no library folder at {path}")
        return f"new library at {path}, encoder {model}"

    def catalog_and_match(self) -> str:
        from engine.library import Library
        from engine.wording import count

        rows = _read_csv(self.demo / "catalog.csv")
        heic = self._heic_copy(self.photo)
        with Library(self.work / "Library") as lib:
            report = lib.import_catalog(self.demo, self.demo / "catalog.csv")
            _require(not report.cancelled, "the catalog import was cancelled")
            _require(
                not report.skipped,
                "catalog import skipped "
                + "; ".join(f"{where}: {why}" for where, why in report.skipped[:3]),
            )
            skus = {row["sku"] for row in rows}
            _require(
                report.products == len(skus),
                f"imported {report.products} products, catalog.csv lists {len(skus)}",
            )
            results = list(lib.match([self.photo, heic], top_k=3))
        _require(len(results) == 2, f"matching 2 photos gave {len(results)} results")
        found = []
        for result in results:
            name = result.path.name
            _require(result.error is None, f"{name} could not be matched: {result.error}")
            _require(bool(result.suggestions), f"{name}: no suggestions")
            top = result.suggestions[0]
            _require(
                top.sku == self.expected_sku,
                f"{name}: top suggestion is {top.sku!r} (similarity {top.similarity:.3f}), "
                f"expected {self.expected_sku!r}",
            )
            found.append(f"{name} -> {top.sku} ({top.similarity:.2f})")
        return f"{count(report.products, 'product')} imported; " + ", ".join(found)

    def workbook(self) -> str:
        """The demo sheet saved as an Excel workbook reads as the CSV does: suppliers mail
        .xlsx, and openpyxl is imported only when one is read (a freezer may leave it out)."""
        import openpyxl

        from engine.sheet import read_sheet

        rows = _read_csv(self.demo / "catalog.csv")
        wb = openpyxl.Workbook()
        sheet = wb.active
        sheet.append(list(rows[0]))
        for row in rows:
            sheet.append(list(row.values()))
        target = self.work / "catalog.xlsx"
        wb.save(target)
        read = read_sheet(target)
        want = sorted(row["sku"] for row in rows)
        got = sorted(row.sku for row in read.rows)
        _require(got == want, f"catalog.xlsx read {len(got)} rows, catalog.csv has {len(want)}")
        return f"catalog.xlsx: {len(got)} rows"

    def _heic_copy(self, photo: Path) -> Path:
        """The demo photo re-encoded as HEIC: phones deliver that, and it needs libheif."""
        import pillow_heif
        from PIL import Image

        target = self.work / f"{photo.stem}.heic"
        with Image.open(photo) as img:
            pillow_heif.from_pillow(img.convert("RGB")).save(str(target), quality=90)
        return target

    def qt(self) -> str:
        # Never show anything: the offscreen platform unless the caller chose one.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtGui import QColor, QImage
        from PySide6.QtWidgets import QApplication

        from desktop_app.icons import app_icon
        from desktop_app.previews import read_scaled

        app = QApplication.instance() or QApplication(["shopmatch-desktop"])
        image = app_icon().pixmap(64, 64).toImage().convertToFormat(QImage.Format.Format_ARGB32)
        _require(not image.isNull(), "the app icon (SVG) did not render: Qt SVG plugin missing?")
        inked = sum(
            1
            for y in range(0, image.height(), 4)
            for x in range(0, image.width(), 4)
            if QColor(image.pixel(x, y)).alpha() > 0
        )
        _require(inked > 0, "the app icon rendered blank: Qt SVG plugin missing?")
        photo = read_scaled(self.photo, 128)
        _require(not photo.isNull(), f"Qt could not read {self.photo.name}: JPEG plugin missing?")
        return f"platform {app.platformName()}, icon and JPEG preview render"

    def learning(self) -> str:
        import torch

        from engine.export_onnx import (
            ONNX_FILE,
            build_embedding_net,
            export_encoder,
            onnx_vs_torch_max_abs_diff,
            weights_path,
        )

        for arch in ("tf_efficientnet_lite0", "mobilenet_v2"):
            _require(weights_path(arch).is_file(), f"ImageNet weights missing for {arch}")
        arch, size = "tf_efficientnet_lite0", 224
        out = self.work / "export"
        manifest = export_encoder(arch, out, input_size=size)
        net = build_embedding_net(arch, static_pad_size=size)
        probe = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
        diff = onnx_vs_torch_max_abs_diff(net, out / ONNX_FILE, probe)
        _require(diff <= ONNX_TOLERANCE, f"exported ONNX differs from torch by {diff:.2e}")
        # One optimiser step: fine-tuning needs autograd and torch.optim, not just inference.
        net.train()
        optimiser = torch.optim.AdamW(net.parameters(), lr=1e-4)
        loss = (1 - net(probe)[0] @ net(probe)[1]).abs()
        loss.backward()
        optimiser.step()
        _require(bool(torch.isfinite(loss)), f"a training step gave a non-finite loss ({loss})")
        cuda = torch.version.cuda or "none"
        return (
            f"torch {torch.__version__} (CUDA {cuda}), exported {manifest.version}, "
            f"max abs diff {diff:.1e}"
        )


def run(scope: str = "all", out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the checks in order, stop at the first failure; returns the process exit code."""
    if (out or sys.stdout) is None or (err or sys.stderr) is None:
        # A windowed Windows build has no console streams: report to a file instead.
        report = Path(tempfile.gettempdir()) / "shopmatch-selftest.txt"
        with report.open("w", encoding="utf-8") as f:
            return run(scope, f, f)
    out = out or sys.stdout
    err = err or sys.stderr
    if scope not in SCOPES:
        err.write(f"self-test FAILED: unknown scope {scope!r} (choose from {', '.join(SCOPES)})\n")
        return EXIT_FAILED
    from engine import __version__

    start = time.perf_counter()
    out.write(f"ShopMatch {__version__} self-test ({scope})\n")
    with tempfile.TemporaryDirectory(prefix="shopmatch-selftest-") as tmp:
        state = _Run(Path(tmp))
        checks: list[tuple[str, Callable[[], str]]] = [
            ("resources", state.resources),
            ("library", state.library),
            ("catalog+match", state.catalog_and_match),
            ("workbook", state.workbook),
            ("qt", state.qt),
        ]
        if scope == "all":
            checks.append(("learning", state.learning))
        for name, check in checks:
            t0 = time.perf_counter()
            try:
                detail = check()
            except SelfTestError as exc:
                err.write(f"self-test FAILED at {name}: {exc}\n")
                return EXIT_FAILED
            except Exception as exc:  # a crash is a failure too, with the evidence
                err.write(f"self-test FAILED at {name}: {type(exc).__name__}: {exc}\n")
                err.write(traceback.format_exc())
                return EXIT_FAILED
            out.write(f"  ok  {name:<14} {time.perf_counter() - t0:5.1f} s  {detail}\n")
            out.flush()
    out.write(f"self-test passed in {time.perf_counter() - start:.1f} s\n")
    out.flush()
    return EXIT_OK
