"""ShopMatch engine: catalog, encoder, index, matching, decisions and export. Never imports Qt."""

import os

# onnxruntime 1.32 writes a telemetry database under ~/.cache and a session file in the temp
# folder when it is imported (seen with strace). An offline tool has no use for either.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
