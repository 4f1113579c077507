"""Names of the ConfigMaps that hold an incident's drafts (notices, post-mortem).

A draft is never edited in place: each version is a new, immutable ConfigMap
named by its content (``<incident>-notices-<hash>``), owned by the incident (so
the API server's garbage collector removes every version with it), and the
incident's ``status.drafts`` names the current one.  That is why the operator
needs only ``create`` on ConfigMaps — no cluster-wide ``patch``, ``update`` or
``delete``, which would let its token rewrite any ConfigMap in the cluster
(``kube-system/aws-auth`` is cluster-admin on EKS).

The same content always gets the same name, so a crash between creating a
draft and recording it in status is repaired by the next pass: the create
answers 409, the name is recorded.  Older versions stay until the incident is
deleted: they are what was drafted at each point of the incident.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from airlock.api.incident import AIIncident

NOTICES = "notices"
POSTMORTEM = "postmortem"
MAX_NAME = 253  # a ConfigMap name is a DNS subdomain
HASH_LENGTH = 10


def content_hash(data: Mapping[str, str]) -> str:
    """A short, stable digest of a ConfigMap's ``data``."""
    canonical = json.dumps(dict(data), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def name(incident: str, kind: str, data: Mapping[str, str]) -> str:
    """``<incident>-<kind>-<hash of data>``, the incident's name cut to fit 253 characters."""
    suffix = f"-{kind}-{content_hash(data)}"
    return incident[: MAX_NAME - len(suffix)].rstrip(".-") + suffix


def legacy_name(incident: str, kind: str) -> str:
    """Where operators before content-named drafts kept them (``<incident>-notices``), read as a fallback."""
    suffix = f"-{kind}"
    return incident[: MAX_NAME - len(suffix)].rstrip(".-") + suffix


def current(incident: AIIncident, kind: str) -> str:
    """The ConfigMap holding ``incident``'s current ``kind`` draft (``status.drafts``; else the legacy name)."""
    recorded = getattr(incident.status.drafts, kind, None) if incident.status and incident.status.drafts else None
    return str(recorded) if recorded else legacy_name(incident.metadata.name or "", kind)
