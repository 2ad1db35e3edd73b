"""The shape of the API's objects, from the protobuf message tables: which fields a kind has,
and what the real server's JSON leaves out.

Every object the real server stores or answers has been through its Go types: fields the
types do not have are gone, and so are nulls and the empty values of fields marked
`omitempty`. The store applies `drop_empty` to every write; `prune_unknown` removes (and names)
the fields a client sent that the kind does not have.
"""

from __future__ import annotations

from typing import Any

from .protobuf_types import KIND_MESSAGES, MESSAGES, Field

Obj = dict[str, Any]

# API fields the protobuf tables leave out (in-tree cloud volumes, alpha fields): known to the
# API, so kept and accepted here, though a protobuf body carrying them is refused.
UNTABLED: dict[str, set[str]] = {
    "VolumeSource": {"gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "iscsi",
                     "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc",
                     "azureFile", "vsphereVolume", "quobyte", "azureDisk",
                     "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
                     "ephemeral"},
    "PodSpec": {"ephemeralContainers", "schedulingGroup", "evictionResponders"},
    "PodStatus": {"resourceClaimStatuses", "extendedResourceClaimStatus", "allocatedResources",
                  "resources", "nodeAllocatableResourceClaimStatuses", "volumeHealth"},
    "ContainerStatus": {"volumeMounts", "user", "allocatedResourcesStatus"},
    "JobSpec": {"scheduling"}, "TokenRequestSpec": {"attestations"},
    "NodeSpec": {"podPreemptionPolicy"},
    "VolumeProjection": {"clusterTrustBundle", "podCertificate"}, "ListMeta": {"shardInfo"},
}


def _by_name(message: str) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for f in MESSAGES[message].ordered:
        if f.inline:
            out.update(_by_name(f.type))
        else:
            out[f.name] = f
    return out


def _untabled(message: str) -> set[str]:
    out = set(UNTABLED.get(message, ()))
    for f in MESSAGES[message].ordered:
        if f.inline:
            out |= _untabled(f.type)
    return out


def _prune(message: str, value: dict[str, Any], path: str) -> list[str]:
    known, untabled = _by_name(message), _untabled(message)
    found: list[str] = []
    for key in list(value):
        if key in untabled:
            continue
        f = known.get(key)
        if f is None:
            found.append(path + key)
            del value[key]
            continue
        if f.map or f.type not in MESSAGES:
            continue
        child = value[key]
        items = child if f.repeated and isinstance(child, list) else [child]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                where = f"{path}{key}[{i}]." if f.repeated else f"{path}{key}."
                found += _prune(f.type, item, where)
    return found


def prune_unknown(api_version: str, kind: str, obj: Obj) -> list[str]:
    """Remove the fields `kind` does not have (as decoding into the real types drops them) and
    return their paths, as strict decoding names them (`spec.replicass`)."""
    message = KIND_MESSAGES.get((api_version, kind))
    if message is None:
        return []
    top = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    found = _prune(message, top, "")
    for key in [k for k in obj if k not in ("apiVersion", "kind") and k not in top]:
        del obj[key]
    return found


def _empty(f: Field, value: object) -> bool:
    if value is None:
        return True
    if f.repeated or f.map:
        return not value
    if f.type in MESSAGES or f.keep_zero or f.type in ("ios", "q", "t", "mt", "raw", "fv1"):
        return False  # structs in the Go types: never left out for being zero
    return value in ("", 0, False) and not isinstance(value, float)


def _drop_empty(message: str, value: dict[str, Any]) -> None:
    known = _by_name(message)
    for key in list(value):
        f = known.get(key)
        if f is None:
            continue
        child = value[key]
        if _empty(f, child):
            del value[key]
        elif f.type in MESSAGES and not f.map:
            for item in (child if f.repeated and isinstance(child, list) else [child]):
                if isinstance(item, dict):
                    _drop_empty(f.type, item)


def drop_empty(api_version: str, kind: str, obj: Obj) -> None:
    """Leave out what the real server's JSON leaves out: nulls, and the empty values of fields
    marked `omitempty` in the API's types (a round trip through those types)."""
    message = KIND_MESSAGES.get((api_version, kind))
    if message is not None:
        _drop_empty(message, obj)
