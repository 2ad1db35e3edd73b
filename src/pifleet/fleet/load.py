"""Reading a fleet file: YAML with positions, then the model, then cross-field checks."""

from __future__ import annotations

from pathlib import Path

import yaml

from pifleet.fleet.model import Fleet, FleetFileError


def load_fleet(path: Path) -> Fleet:
    """Read and validate a fleet file. Raises FleetFileError naming file, line and column."""
    # Placeholder loader: replaced by the positioned loader.
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise FleetFileError(path, None, None, f"cannot read: {exc.strerror}") from exc
    fleet = Fleet.model_validate(data)
    fleet._path = Path(path)
    return fleet
