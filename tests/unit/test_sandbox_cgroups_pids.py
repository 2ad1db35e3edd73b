"""Finding the processes left in a stopped node's cgroups."""

from __future__ import annotations

from pathlib import Path

from pifleet.sandbox.cgroups import pids_in


def test_pids_in_reads_the_groups_and_those_below(tmp_path: Path) -> None:
    top = tmp_path / "pifleet-ab12cd-00"
    (top / "system.slice" / "ssh.service").mkdir(parents=True)
    (top / "cgroup.procs").write_text("")
    (top / "system.slice" / "cgroup.procs").write_text("12\n")
    (top / "system.slice" / "ssh.service" / "cgroup.procs").write_text("34\n12\n")
    other = tmp_path / "pifleet-ab12cd-01"
    other.mkdir()
    (other / "cgroup.procs").write_text("56\n")
    assert pids_in([top]) == [12, 34]
    assert pids_in([top, other]) == [12, 34, 56]
    assert pids_in([tmp_path / "gone"]) == []
