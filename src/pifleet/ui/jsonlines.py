"""`--json`: every event as one JSON object per line on stdout."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from pifleet.events import Event


class JsonLines:
    """A sink that writes each event as a JSON line and flushes it at once."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_json(), sort_keys=True) + "\n")
        self.stream.flush()
