"""'~' in paths people type: the home folder, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path


def expand_home(path: str | Path) -> Path:
    """``path`` with a leading '~' or '~/' as the home folder. '~name' is left as a name:
    Path.expanduser() reads it as another account's home and raises when there is no such
    account, so an editor's copy named '~$scan.jpg' ended the whole command."""
    text = str(path)
    if text == "~" or text.startswith(("~/", "~" + os.sep)):
        return Path(os.path.expanduser(text))
    return Path(text)
