"""Fine-tuning the encoder on a shop's catalog and confirmed photos (torch lives here only).

Modules: ``options`` (choices, torch-free), ``data`` (what to learn from, held-out split),
``augment`` (simulated phone photos), ``model`` (frozen trunk, trainable tail, projection),
``losses`` (ArcFace, catalog orthogonality), ``trainer`` (feature cache, training loop),
``gate`` (candidate vs active), ``budget`` (views a run may use, its expected duration; torch-
free). The entry point is :mod:`engine.learning`.
"""

from __future__ import annotations

import os
import sys

# OpenMP threads that spin while waiting are 10-30x slower when the cores are shared (other
# programs, or onnxruntime's own threads): measured on a busy 2-core laptop. Only effective
# if torch is not imported yet; budget.threads_for() falls back to one thread otherwise.
TORCH_PRELOADED = "torch" in sys.modules
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
