"""The fleet's kubeconfig: taken from kubeadm's admin.conf, renamed, merged into the user's.

kubeadm names every cluster alike (cluster `kubernetes`, user `kubernetes-admin`, context
`kubernetes-admin@kubernetes`, facts.md section 3), so the entries are renamed structurally
(the entries and every reference to them) to the fleet's name before they meet the user's
other clusters. The merge follows kubectl's own rules for which file of `$KUBECONFIG` is
written, changes nothing but pifleet's three entries (and current-context when asked or when
there was none), locks files the way kubectl does, keeps a backup of each file it changes and
writes atomically with mode 0600. Credentials never appear in a message or a repr.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pifleet.errors import BadInput, Failed
from pifleet.files import atomic_write

Doc = dict[str, Any]

# pifleet's entries carry this extension, so a re-run replaces its own entries and never
# someone else's that happens to share the name.
MARKER = {"name": "pifleet", "extension": {"managed-by": "pifleet"}}
SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,252}$")
_LOCK_WAIT = 5.0


# ---- reading and writing kubeconfig YAML ----

class _Loader(yaml.SafeLoader):
    """YAML as kubectl reads it, but timestamps stay the strings they were written as."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(yaml.SafeDumper):
    """Block-style YAML without anchors (kubectl and people read it)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(doc: Mapping[str, Any]) -> str:
    """A kubeconfig document as YAML text, keys in the order given."""
    return yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1 << 16)


def parse(text: str, source: str) -> Doc:
    """Parse kubeconfig text and check its shape; `source` names it in errors.

    An empty document is an empty kubeconfig (as for kubectl). Anything else that is not a
    kubeconfig is bad input that names the source and the problem.
    """
    try:
        doc = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(f"{source}{where}: not a kubeconfig (invalid YAML: {problem})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise BadInput(f"{source}: not a kubeconfig (the document is a "
                       f"{type(doc).__name__}, not a mapping)")
    kind = doc.get("kind")
    if kind not in (None, "", "Config"):
        raise BadInput(f"{source}: not a kubeconfig (kind: {kind})")
    for plural, inner in SECTIONS:
        items = doc.get(plural)
        if items is None:
            continue
        if not isinstance(items, list):
            raise BadInput(f"{source}: not a kubeconfig ({plural} is not a list)")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise BadInput(f"{source}: {plural}[{i}] has no name")
            if not isinstance(item.get(inner) or {}, dict):
                raise BadInput(f"{source}: {plural}[{i}] ({item['name']}): {inner} is not "
                               "a mapping")
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        raise BadInput(f"{source}: current-context is not a name")
    return doc


def read_file(path: Path) -> Doc | None:
    """A kubeconfig file's document, None when there is no such file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a kubeconfig file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a kubeconfig (not UTF-8 text)") from None
    return parse(text, str(path))


def entry(doc: Mapping[str, Any], plural: str, name: str) -> Doc | None:
    """The named entry of a section (`clusters`, `users`, `contexts`), or None."""
    for item in doc.get(plural) or []:
        if item.get("name") == name:
            return dict(item)
    return None


def is_ours(item: Mapping[str, Any], inner: str) -> bool:
    """Whether an entry carries pifleet's marker extension."""
    exts = (item.get(inner) or {}).get("extensions") or []
    return any(isinstance(e, dict) and e.get("name") == MARKER["name"] for e in exts)


# ---- the fleet's entries, from admin.conf ----

@dataclass(frozen=True, repr=False)
class FleetKubeconfig:
    """The fleet's cluster, user and context entries, renamed and pointed at the fleet.

    Holds the cluster-admin credentials: its repr names only the context and the server.
    """

    name: str
    server: str
    cluster: Doc = field(compare=False)
    user: Doc = field(compare=False)
    context: Doc = field(compare=False)

    def __repr__(self) -> str:
        return f"FleetKubeconfig(context={self.name!r}, server={self.server!r})"

    def entries(self) -> dict[str, Doc]:
        """Section name -> pifleet's entry for it."""
        return {"clusters": self.cluster, "users": self.user, "contexts": self.context}

    def document(self) -> Doc:
        """A kubeconfig with only the fleet's context, current (for an API client)."""
        return {"apiVersion": "v1", "kind": "Config",
                "clusters": [copy.deepcopy(self.cluster)],
                "contexts": [copy.deepcopy(self.context)],
                "current-context": self.name, "preferences": {},
                "users": [copy.deepcopy(self.user)]}


def check_name(name: str) -> str:
    """A context name pifleet may write (letters, digits and `._@:-`)."""
    if not _NAME.match(name or ""):
        raise BadInput(f"kubeconfig context name {name!r}: use letters, digits and . _ @ : - "
                       "(starting with a letter or digit)")
    return name


def server_at(server: str, address: str, source: str) -> str:
    """`server` with its host replaced by `address`, keeping scheme, port and path."""
    parts = urlsplit(server)
    try:
        port = parts.port
    except ValueError:
        port = None
        parts = parts._replace(netloc="")
    if parts.scheme != "https" or not parts.hostname:
        raise BadInput(f"{source}: the cluster's server {server!r} is not an https:// URL")
    host = address.strip()
    if not host or any(c in host for c in "/@?# "):
        raise BadInput(f"control-plane address {address!r} is not a host name or address")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port or 443}{parts.path.rstrip('/')}"


def fleet_kubeconfig(admin_conf: str, *, name: str, address: str,
                     source: str = "admin.conf") -> FleetKubeconfig:
    """The fleet's entries from the text of kubeadm's `admin.conf`.

    The context named by admin.conf's current-context (or its only context), its cluster and
    its user become context `name`, cluster `name` and user `name-admin`; every reference
    follows. The server keeps its port and points at `address`, the control plane's address
    from the fleet file, which this machine can reach.
    """
    check_name(name)
    doc = parse(admin_conf, source)
    contexts = doc.get("contexts") or []
    wanted = doc.get("current-context") or (contexts[0]["name"] if len(contexts) == 1 else "")
    ctx = entry(doc, "contexts", wanted) if wanted else None
    if ctx is None:
        raise BadInput(f"{source}: no current context to take the cluster from")
    ctx_body = dict(ctx.get("context") or {})
    cluster = entry(doc, "clusters", str(ctx_body.get("cluster", "")))
    user = entry(doc, "users", str(ctx_body.get("user", "")))
    if cluster is None or user is None:
        missing = "cluster" if cluster is None else "user"
        raise BadInput(f"{source}: context {wanted!r} names a {missing} that is not in the file")
    cluster_body = copy.deepcopy(cluster.get("cluster") or {})
    user_body = copy.deepcopy(user.get("user") or {})
    if not any(user_body.get(k) for k in ("client-certificate-data", "client-certificate",
                                          "token", "tokenFile", "exec")):
        raise BadInput(f"{source}: user {user['name']!r} has no credentials")
    cluster_body["server"] = server_at(str(cluster_body.get("server", "")), address, source)
    user_name = f"{name}-admin"
    for body in (cluster_body, user_body):
        body["extensions"] = [copy.deepcopy(MARKER)]
    ctx_out: Doc = {"cluster": name, "user": user_name,
                    "extensions": [copy.deepcopy(MARKER)]}
    return FleetKubeconfig(name, cluster_body["server"],
                           {"name": name, "cluster": cluster_body},
                           {"name": user_name, "user": user_body},
                           {"name": name, "context": ctx_out})


# ---- which files, as kubectl chooses them ----

def chain(output: Path | None = None, environ: Mapping[str, str] | None = None,
          home: Path | None = None) -> list[Path]:
    """The kubeconfig files in loading order.

    `output` is like kubectl's `--kubeconfig`: that file alone. Otherwise `$KUBECONFIG` is a
    list (the system's path separator, empty entries skipped, duplicates dropped), else
    `~/.kube/config`.
    """
    if output is not None:
        return [Path(output)]
    env = os.environ if environ is None else environ
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return [Path(p) for p in dict.fromkeys(listed)]
    return [(home or Path.home()) / ".kube" / "config"]


def default_file(files: Sequence[Path], existing: Mapping[Path, Doc | None]) -> Path:
    """Where kubectl creates new entries: the only file, else the first that exists, else
    the last one listed (client-go's GetDefaultFilename)."""
    if len(files) == 1:
        return files[0]
    for path in files:
        if existing.get(path) is not None:
            return path
    return files[-1]


# ---- the merge ----

@dataclass(frozen=True)
class FileChange:
    """One file the merge rewrote, and where its previous content was saved."""

    path: Path
    backup: Path | None


@dataclass(frozen=True)
class MergeResult:
    """What the merge did: the files it rewrote (none: unchanged) and the current context."""

    context: str
    files: tuple[Path, ...]
    written: tuple[FileChange, ...]
    current_context: str | None
    made_current: bool

    @property
    def changed(self) -> bool:
        """Whether any file was written."""
        return bool(self.written)


def _new_config() -> Doc:
    return {"apiVersion": "v1", "kind": "Config", "clusters": [], "contexts": [],
            "current-context": "", "preferences": {}, "users": []}


def _editable(docs: dict[Path, Doc], path: Path) -> Doc:
    """The document pifleet is about to change in `path`: a new file (or an empty one)
    starts as kubectl would write it."""
    if not docs.get(path):
        docs[path] = _new_config()
    return docs[path]


def _put(doc: Doc, plural: str, item: Doc) -> None:
    items = list(doc.get(plural) or [])
    for i, old in enumerate(items):
        if old.get("name") == item["name"]:
            items[i] = item
            break
    else:
        items.append(item)
    doc[plural] = items


def _ours(fleet: FleetKubeconfig, plural: str, inner: str, old: Doc | None) -> Doc:
    """pifleet's entry, replacing its previous one; a context keeps the namespace its user
    chose (`kubectl config set-context --namespace`)."""
    new = copy.deepcopy(fleet.entries()[plural])
    if plural == "contexts" and old is not None:
        namespace = (old.get(inner) or {}).get("namespace")
        if namespace:
            new[inner]["namespace"] = namespace
    return new


def merge_kubeconfig(fleet: FleetKubeconfig, *, output: Path | None = None,
                     make_current: bool = False, environ: Mapping[str, str] | None = None,
                     home: Path | None = None) -> MergeResult:
    """Merge the fleet's entries into the user's kubeconfig, changing nothing else.

    Files as kubectl picks them (see `chain`): an entry pifleet wrote before is replaced in
    the file that holds it; a new one goes to the file kubectl would create it in. An entry
    of the same name that pifleet did not write is refused (bad input, nothing written).
    current-context is set when `make_current`, or when no file sets one. A file whose
    content would not change is not written; a changed one is backed up first.
    """
    files = chain(output, environ, home)
    with _kubectl_locks(files):
        docs = {path: read_file(path) for path in files}
        target = default_file(files, docs)
        new_docs = {p: copy.deepcopy(d) for p, d in docs.items() if d is not None}
        for plural, inner in SECTIONS:
            name = fleet.entries()[plural]["name"]
            where = next((p for p in files if docs[p] is not None
                          and entry(docs[p] or {}, plural, name) is not None), None)
            old = entry(docs[where] or {}, plural, name) if where else None
            if old is not None and not is_ours(old, inner):
                raise BadInput(f"{where}: a {inner} named {name!r} is already there and pifleet "
                               "did not write it; choose another context name")
            _put(_editable(new_docs, where or target), plural, _ours(fleet, plural, inner, old))
        current = next((d.get("current-context") for d in docs.values()
                        if d and d.get("current-context")), None)
        made_current = (make_current and current != fleet.name) or not current
        if made_current:
            _editable(new_docs, target)["current-context"] = fleet.name
            current = fleet.name
        written = tuple(_write(path, docs.get(path), doc) for path, doc in new_docs.items()
                        if doc != docs.get(path))
    return MergeResult(fleet.name, tuple(files), written, current, made_current)


def _write(path: Path, old: Doc | None, doc: Doc) -> FileChange:
    real = Path(os.path.realpath(path))
    backup = None
    if old is not None:
        backup = _backup_name(real)
        atomic_write(backup, real.read_bytes(), mode=0o600)
    atomic_write(real, dump(doc), mode=0o600)
    return FileChange(path, backup)


def _backup_name(real: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = real.with_name(f"{real.name}.pifleet-{stamp}.bak")
    n = 2
    while candidate.exists():
        candidate = real.with_name(f"{real.name}.pifleet-{stamp}-{n}.bak")
        n += 1
    return candidate


@contextmanager
def _kubectl_locks(files: Sequence[Path]) -> Iterator[None]:
    """kubectl's own lock protocol: `FILE.lock` created exclusively, removed afterwards.

    kubectl refuses to modify a kubeconfig while that file exists, so a lock file must never
    be left behind; files in a folder that does not exist yet need none.
    """
    held: list[Path] = []
    try:
        for path in sorted({Path(os.path.realpath(p)) for p in files}):
            if not path.parent.is_dir():
                continue
            lock = path.with_name(path.name + ".lock")
            deadline = time.monotonic() + _LOCK_WAIT
            while True:
                try:
                    os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                    break
                except FileExistsError:
                    if time.monotonic() > deadline:
                        raise Failed(f"{lock} exists: another kubectl or pifleet is changing "
                                     f"{path}; remove {lock} if none is running") from None
                    time.sleep(0.1)
                except OSError as exc:
                    raise BadInput(f"{path}: cannot write there: {exc.strerror}") from None
            held.append(lock)
        yield
    finally:
        for lock in held:
            lock.unlink(missing_ok=True)


def completion_hint(shell: str | None = None) -> str:
    """One line telling how to turn on kubectl's tab completion in the user's shell."""
    name = Path(shell if shell is not None else os.environ.get("SHELL", "")).name
    how = {
        "bash": "echo 'source <(kubectl completion bash)' >> ~/.bashrc",
        "zsh": "echo 'source <(kubectl completion zsh)' >> ~/.zshrc",
        "fish": "kubectl completion fish > ~/.config/fish/completions/kubectl.fish",
    }.get(name, "see `kubectl completion --help` for your shell")
    line = f"kubectl tab completion: {how}"
    if shutil.which("kubectl") is None:
        line += " (install kubectl first)"
    return line
