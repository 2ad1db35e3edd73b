"""Where a fleet's per-node logs live: `~/.local/state/pifleet/<fleet>/` (XDG_STATE_HOME
honoured). The log writer and `sandbox down` (which removes a sandbox fleet's logs) agree here.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_root() -> Path:
    """pifleet's user state directory."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "pifleet"


def log_dir(fleet_name: str) -> Path:
    """The folder of one fleet's per-node log files."""
    return state_root() / fleet_name
