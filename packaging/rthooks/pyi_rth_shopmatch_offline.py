"""Runtime settings for the installed app, applied before any of its code runs.

onnxruntime (1.32 on Linux) starts a telemetry client at import that writes
``~/.cache/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db`` and ``$TMPDIR/.ses``. ShopMatch
is an offline tool that promises to write only its library and settings, so the frozen app
turns that off (a user or IT can still override it in the environment).
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
