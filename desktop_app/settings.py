"""QSettings keys, in one place so a typo cannot silently lose a setting."""

from __future__ import annotations

ORGANISATION = "ShopMatch"
APPLICATION = "ShopMatch"

GEOMETRY = "window/geometry"
SPLITTER = "window/review_splitter"
LAST_LIBRARY = "library/last"
THRESHOLD = "review/threshold"
EXPORT_DIR = "export/dir"
EXPORT_PER = "export/per"  # "photo" or "sku", as last chosen
EXPORT_UNDECIDED = "export/undecided"  # "true" when undecided photos were listed too
IMPORT_FOLDER = "import/folder"
UNMATCHED = "queue/unmatched"  # JSON {library path: [photos dropped, not matched yet]}
STOPPED = "queue/stopped"  # JSON {library path: [photos whose matching the user stopped]}
IMPORT_SHEET = "import/sheet"  # the sheet that came with that folder ("" when none)
# "folder|older folder" pairs the user said are not a newer copy of each other: not asked again
NOT_REPLACING = "import/not_replacing"
