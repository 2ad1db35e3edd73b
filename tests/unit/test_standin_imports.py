"""The stand-in runs on nodes with Debian's python3: it may import only the standard library,
`cryptography` and `yaml`, and itself (an allowlist, which import-linter cannot express)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import kube_standin

ALLOWED = {"cryptography", "yaml", "kube_standin"}
SOURCE = Path(kube_standin.__file__).parent


def _top_level_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_standin_imports_only_stdlib_cryptography_and_yaml() -> None:
    modules = sorted(SOURCE.glob("*.py"))
    assert len(modules) > 10
    foreign = {
        f"{path.name}: {name}"
        for path in modules
        for name in _top_level_imports(path)
        if name not in ALLOWED and name not in sys.stdlib_module_names
    }
    assert not foreign, f"the stand-in imports what Debian's python3 lacks: {sorted(foreign)}"


def test_standin_uses_relative_imports_of_itself() -> None:
    # Installed on a node it lives under /usr/lib/kube-standin; relative imports keep it whole.
    absolute = [p.name for p in SOURCE.glob("*.py") if "kube_standin" in _top_level_imports(p)]
    assert not absolute
