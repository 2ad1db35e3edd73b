import io
import json

import pytest

from pifleet.events import Emitter, Event, Status
from pifleet.ui.jsonlines import JsonLines


def test_step_reports_start_and_ok_with_changed() -> None:
    seen: list[Event] = []
    emit = Emitter(seen.append)
    with emit.step("fregate", "trust", "install key") as result:
        result.changed = True
    assert [e.status for e in seen] == [Status.START, Status.OK]
    assert seen[1].changed and seen[1].duration is not None


def test_step_failure_is_recorded_and_propagates() -> None:
    emit = Emitter()
    with pytest.raises(RuntimeError), emit.step("laperouse", "run", "command"):
        raise RuntimeError("exit status 3")
    assert [(e.node, e.message) for e in emit.failures] == [("laperouse", "exit status 3")]


def test_json_lines_have_the_contract_keys() -> None:
    out = io.StringIO()
    Emitter(JsonLines(out)).emit("black-pearl", "run", "command", Status.OK, changed=True,
                                 duration=1.5, message="done")
    data = json.loads(out.getvalue())
    assert {"node", "phase", "step", "status", "changed", "duration", "message"} <= data.keys()
    assert data["status"] == "ok" and data["node"] == "black-pearl"
