"""Let torchvision import beside a CPU-only torch whose ABI its C++ ops do not match.

PyPI's Linux torchvision wheels link their ``_C`` ops against CUDA torch. Beside the CPU torch
the bundle ships, ``_C`` cannot load; torchvision then skips its op registrations, except two
fake-kernel registrations (``nms``, ``qnms``) in ``torchvision._meta_registrations`` that are
not guarded and raise "operator torchvision::nms does not exist" at import. ShopMatch never
calls torchvision's C++ ops (it needs its pure-Python parts: timm imports ``torchvision.ops.misc``
and ``transforms``; MobileNetV2 is built from ``torchvision.models``), so when the ops did not
load we replace that one module with an empty one, as torchvision's own guard would.

Used as a PyInstaller runtime hook, and as a ``.pth`` import in the build venv so PyInstaller's
analysis can import torchvision too. A torchvision whose ops do load is left untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

_TARGET = "torchvision._meta_registrations"


class _EmptyModuleLoader(importlib.abc.Loader):
    """Creates the module with nothing in it."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # default module creation

    def exec_module(self, module: types.ModuleType) -> None:
        module.__doc__ = "Skipped: torchvision's C++ ops are not available (CPU torch)."


class _SkipMetaRegistrations(importlib.abc.MetaPathFinder):
    """Answers only for ``torchvision._meta_registrations``, only when the ops are missing."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        extension = sys.modules.get("torchvision.extension")
        if extension is None or extension._has_ops():
            return None
        return importlib.util.spec_from_loader(fullname, _EmptyModuleLoader())


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _SkipMetaRegistrations) for f in sys.meta_path):
        sys.meta_path.insert(0, _SkipMetaRegistrations())


install()
