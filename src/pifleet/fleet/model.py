"""The fleet file's model: its shape and defaults.

Relative paths in the file are relative to the directory that holds it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from pifleet.errors import BadInput

DEFAULT_PACKAGE_REPOSITORY = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/"
DEFAULT_PACKAGE_KEY_URL = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/Release.key"
STATE_DIR = ".pifleet"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SSHSettings(_Strict):
    """How pifleet reaches every node. HypriotOS defaults: user pirate, password hypriot."""

    user: str = "pirate"
    port: int = Field(22, ge=1, le=65535)
    private_key: Path = Path(STATE_DIR) / "id_ed25519"
    known_hosts: Path = Path(STATE_DIR) / "known_hosts"
    # Used once, by `trust`, for first contact. None: ask for it.
    password: str | None = "hypriot"


class NodeSSH(_Strict):
    """Per-node overrides of the fleet's SSH settings."""

    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    private_key: Path | None = None
    password: str | None = None


Role = Literal["control-plane", "worker"]


class Node(_Strict):
    """One Raspberry Pi."""

    name: str
    address: str
    role: Role = "worker"
    ssh: NodeSSH = Field(default_factory=NodeSSH)
    tower: str | None = None
    team: str | None = None


class KubernetesSettings(_Strict):
    """What cluster to build."""

    version: str = "1.34"
    pod_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.244.0.0/16")
    service_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.96.0.0/12")
    cni: Literal["flannel"] = "flannel"
    dashboard: Literal["headlamp", "kubernetes-dashboard", "none"] = "headlamp"
    package_repository: str = DEFAULT_PACKAGE_REPOSITORY
    package_key_url: str = DEFAULT_PACKAGE_KEY_URL
    # facts.md section 1: a join token should be short-lived; minted just before each join.
    token_ttl: str = "1h"

    @property
    def minor(self) -> str:
        """`1.34` for version `1.34` or `1.34.2`."""
        return ".".join(self.version.split(".")[:2])

    @property
    def repository_url(self) -> str:
        """The package repository for this version's minor."""
        return self.package_repository.format(minor=self.minor)

    @property
    def key_url(self) -> str:
        """The repository's signing key for this version's minor."""
        return self.package_key_url.format(minor=self.minor)


class AptSettings(_Strict):
    """Where nodes get Debian packages from."""

    mirror: str | None = None
    proxy: str | None = None


class Fleet(_Strict):
    """A whole fleet file."""

    name: str
    nodes: list[Node]
    ssh: SSHSettings = Field(default_factory=SSHSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    apt: AptSettings = Field(default_factory=AptSettings)

    _path: Path = PrivateAttr(default=Path("fleet.yaml"))

    @property
    def path(self) -> Path:
        """The file this fleet was read from."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """The directory that relative paths in the file are relative to."""
        return self._path.resolve().parent

    def resolve(self, path: Path) -> Path:
        """A path from the file, made absolute against `base_dir` (with `~` expanded)."""
        path = path.expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def state_dir(self) -> Path:
        """Where this fleet's key, known_hosts and secrets live by default."""
        return self.base_dir / STATE_DIR

    @property
    def secrets_path(self) -> Path:
        """The fleet's secrets file (mode 0600)."""
        return self.state_dir / "secrets.yaml"

    @property
    def control_plane(self) -> Node:
        """The one control-plane node."""
        return next(n for n in self.nodes if n.role == "control-plane")

    def node(self, name: str) -> Node:
        """The node called `name`; BadInput naming the fleet file if there is none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise BadInput(f"{self.path}: no node named {name!r} "
                       f"(nodes: {', '.join(n.name for n in self.nodes)})")

    def select(self, names: list[str] | None) -> list[Node]:
        """The nodes named (all when `names` is empty or None), in fleet order."""
        if not names:
            return list(self.nodes)
        wanted = {self.node(n).name for n in names}
        return [n for n in self.nodes if n.name in wanted]


class FleetFileError(BadInput):
    """A fleet file that cannot be used, with where and what to write instead."""

    def __init__(self, path: Path | str, line: int | None, column: int | None,
                 message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.message = message
        where = str(path)
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")
