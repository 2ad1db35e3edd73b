"""The fleet file's model: its shape, defaults and the checks that need only one value.

Relative paths in the file are relative to the directory that holds it. Checks that compare
several values (duplicates, one control plane, overlapping networks) live in `checks.py`, so the
loader can report them with positions even when other values are wrong.
"""

from __future__ import annotations

import ipaddress
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic_core import PydanticCustomError

from pifleet.errors import BadInput, plain_text
from pifleet.fleet.names import is_hostname_label

DEFAULT_PACKAGE_REPOSITORY = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/"
DEFAULT_PACKAGE_KEY_URL = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/Release.key"
STATE_DIR = ".pifleet"

# `1.34` or `1.34.2`: the minor picks the package repository (facts.md section 1).
VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
# A kubeadm token TTL is a Go duration such as `1h`, `30m` or `1h30m`; `0` never expires.
DURATION = re.compile(r"^(0|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)$")
# The fleet's name names a state folder and a kubeconfig context: keep it path-safe.
FLEET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _invalid(message: str) -> PydanticCustomError:
    # A custom error keeps our own wording (a ValueError would gain a "Value error, " prefix).
    return PydanticCustomError("fleet_value", message)


def hostname_suggestion(name: str) -> str:
    """`name` turned into a valid lower-case RFC 1123 label (`Black Pearl` -> `black-pearl`)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return label or "laperouse"


def check_hostname(name: str) -> str:
    """Accept a lower-case RFC 1123 label; otherwise say what to write instead."""
    if not is_hostname_label(name):
        raise _invalid(f"`{name}` is not a valid hostname: use lower-case letters, digits and "
                       f"inner hyphens, at most 63 characters, e.g. `{hostname_suggestion(name)}`")
    return name


def check_address(address: str) -> str:
    """Accept an IPv4 or IPv6 address or a DNS name such as `laperouse.local`."""
    try:
        ipaddress.ip_address(address)
        return address
    except ValueError:
        pass
    name = address[:-1] if address.endswith(".") else address
    labels = name.split(".")
    if re.fullmatch(r"[\d.]+", name):
        raise _invalid(f"`{address}` is not a valid IPv4 address: write four numbers from 0 to "
                       "255, e.g. `192.168.1.10`")
    if (not name or len(name) > 253
            or not all(is_hostname_label(label.lower()) for label in labels)):
        raise _invalid(f"`{address}` is neither an IP address nor a DNS name: write e.g. "
                       "`192.168.1.10` or `laperouse.local`")
    return address


def check_url_template(template: str) -> str:
    """Accept a URL template whose only placeholder is `{minor}`, used at least once."""
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(template)
                  if field is not None}
    except ValueError:
        raise _invalid(f"`{template}` has unbalanced braces: write `{{minor}}` where "
                       "the Kubernetes minor version goes, e.g. "
                       f"`{DEFAULT_PACKAGE_REPOSITORY}`") from None
    others = sorted(fields - {"minor"})
    if others:
        listed = ", ".join(f"{{{f}}}" for f in others)
        raise _invalid(f"`{template}` uses {listed}: the only placeholder is `{{minor}}`, "
                       f"e.g. `{DEFAULT_PACKAGE_REPOSITORY}`")
    if "minor" not in fields:
        raise _invalid(f"`{template}` has no `{{minor}}`: put it where the Kubernetes minor "
                       "version goes, so changing the version moves the repository, e.g. "
                       f"`{DEFAULT_PACKAGE_REPOSITORY}`")
    return template


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SSHSettings(_Strict):
    """How pifleet reaches every node. HypriotOS defaults: user pirate, password hypriot."""

    user: str = "pirate"
    # strict: YAML reads `port: yes` as True, which would otherwise pass as port 1.
    port: int = Field(22, ge=1, le=65535, strict=True)
    private_key: Path = Path(STATE_DIR) / "id_ed25519"
    known_hosts: Path = Path(STATE_DIR) / "known_hosts"
    # Used once, by `trust`, for first contact. None: ask for it.
    password: str | None = "hypriot"


class NodeSSH(_Strict):
    """Per-node overrides of the fleet's SSH settings."""

    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535, strict=True)
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

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        return check_hostname(name)

    @field_validator("address")
    @classmethod
    def _valid_address(cls, address: str) -> str:
        return check_address(address)


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

    @field_validator("version")
    @classmethod
    def _valid_version(cls, version: str) -> str:
        if not VERSION.fullmatch(version):
            bare = re.sub(r"^[vV]", "", version)
            example = bare if VERSION.fullmatch(bare) else "1.34"
            raise _invalid(f"`{version}` is not a Kubernetes version: write a minor such as "
                           f'`"{example}"` or a patch release such as `"1.34.2"` (quoted, so '
                           "YAML keeps it as text)")
        return version

    @field_validator("package_repository", "package_key_url")
    @classmethod
    def _valid_template(cls, template: str) -> str:
        return check_url_template(template)

    @field_validator("token_ttl")
    @classmethod
    def _valid_ttl(cls, ttl: str) -> str:
        if not DURATION.fullmatch(ttl):
            raise _invalid(f"`{ttl}` is not a duration: write e.g. `1h`, `30m` or `1h30m`")
        return ttl

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

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not FLEET_NAME.fullmatch(name):
            raise _invalid(f"`{name}` cannot name a fleet: use letters, digits, `-`, `_` or "
                           f"`.`, at most 63 characters, e.g. `{hostname_suggestion(name)}`")
        return name

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
        """The one control-plane node (the loader guarantees there is exactly one)."""
        for node in self.nodes:
            if node.role == "control-plane":
                return node
        raise BadInput(f"{self.path}: no node has `role: control-plane`")

    def node(self, name: str) -> Node:
        """The node called `name`; BadInput naming the fleet file if there is none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise BadInput(f"{self.path}: no node named {name!r} "
                       f"(nodes: {', '.join(n.name for n in self.nodes)})")

    def select(self, names: list[str] | None) -> list[Node]:
        """The nodes named (all when `names` is None), in fleet order; BadInput for an unknown
        name or an empty list (an empty selection never means every node)."""
        if names is None:
            return list(self.nodes)
        if not names:
            raise BadInput(f"{self.path}: no node selected")
        wanted = {self.node(n).name for n in names}
        return [n for n in self.nodes if n.name in wanted]


@dataclass(frozen=True)
class FleetProblem:
    """One problem in a fleet file: where (1-based; None when unknown) and what to do."""

    line: int | None
    column: int | None
    message: str

    def located(self, path: Path | str) -> str:
        """`file:line:column: message`, leaving out what is unknown."""
        where = str(path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        # One line each, whatever the file held: a key may contain a newline or an escape code.
        return plain_text(f"{where}: {self.message}", one_line=True)


class FleetFileError(BadInput):
    """A fleet file that cannot be used: every problem found, each with where and what to write.

    `line`, `column` and `message` are those of the first problem; `problems` holds all of them.
    The text has one line per problem.
    """

    def __init__(self, path: Path | str, line: int | None, column: int | None,
                 message: str, *, more: list[FleetProblem] | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.message = message
        self.problems = [FleetProblem(line, column, message), *(more or [])]
        super().__init__("\n".join(p.located(path) for p in self.problems))

    @classmethod
    def of(cls, path: Path | str, problems: list[FleetProblem]) -> FleetFileError:
        """One error holding several problems, in file order (problems must not be empty)."""
        ordered = sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
        first, *rest = ordered
        return cls(path, first.line, first.column, first.message, more=rest)
