"""Turn the API models into the three CustomResourceDefinitions the API server enforces.

The pydantic models are the one source of truth; this module makes the CRDs say
exactly what the models say, so ``kubectl apply`` rejects a bad plan with the
same words the operator would use — at admission, not at 3 a.m.

Pydantic emits JSON Schema (draft 2020-12 with ``$ref``/``$defs`` and
``anyOf: [X, null]`` for optional fields); Kubernetes wants a *structural*
OpenAPI v3 schema: every node self-contained and typed, no references, no
nulls, maps as ``additionalProperties``, cross-field rules as CEL
``x-kubernetes-validations``.  :func:`structural` is that conversion; it
refuses any JSON Schema construct it does not know how to translate rather
than emit a schema the API server would reject or, worse, silently weaken.

Pure functions only: ``airlock crds`` writes the result, and ``make
crds-check`` proves the committed ``crds/`` still matches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from airlock.api import aisystem, incident, policy
from airlock.api.common import CATEGORY, GROUP, VERSION, Model

Schema = dict[str, Any]

# Keywords that carry over to a structural schema unchanged (after their
# sub-schemas are converted).  Anything else pydantic emits is an error.
_PASSTHROUGH = frozenset(
    {
        "type",
        "description",
        "enum",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minProperties",
        "maxProperties",
        "default",
    }
)
_DROPPED = frozenset({"title"})
_STANDARD_DESCRIPTIONS = {
    "apiVersion": (
        "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
        "recognized schemas to the latest internal value, and may reject unrecognized values."
    ),
    "kind": (
        "Kind is a string value representing the REST resource this object represents. Servers may infer this "
        "from the endpoint the client submits requests to. In CamelCase."
    ),
}


class SchemaError(ValueError):
    """A model uses a JSON Schema construct that has no structural OpenAPI equivalent."""


def structural(node: Schema, defs: dict[str, Schema], path: str = "", _inlining: tuple[str, ...] = ()) -> Schema:
    """Convert one pydantic JSON Schema node (resolving against ``defs``) into a structural schema node."""
    node = dict(node)
    if "$ref" in node:
        ref = node.pop("$ref")
        name = ref.rsplit("/", 1)[-1]
        if name not in defs:
            raise SchemaError(f"{path or '<root>'}: unresolvable $ref {ref}")
        if name in _inlining:
            raise SchemaError(f"{path}: {name} contains itself; a structural schema cannot express recursion")
        # Sibling keywords of a $ref (the field's description/default) win over the definition's.
        return structural({**defs[name], **node}, defs, path, (*_inlining, name))
    if "anyOf" in node:
        options = [option for option in node.pop("anyOf") if option != {"type": "null"}]
        if len(options) != 1:
            raise SchemaError(f"{path or '<root>'}: anyOf with {len(options)} non-null branches is not structural")
        # An optional field: absent means unset, so the null branch (and a null default) simply go.
        return structural({**options[0], **node}, defs, path, _inlining)
    if "const" in node:
        node.setdefault("enum", [node.pop("const")])
    if "default" in node and node["default"] is None:
        del node["default"]

    out: Schema = {}
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs, f"{path}.{name}", _inlining) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value, defs, f"{path}[]", _inlining)
        elif key == "additionalProperties":
            if value is False:
                continue  # closed objects: structural pruning + strict field validation reject unknown fields
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            else:
                out[key] = structural(value, defs, f"{path}[*]", _inlining)
        elif key == "propertyNames":
            keys = structural(value, defs, f"{path}[key]", _inlining)
            if set(keys) - {"type", "description", "enum"} or "enum" not in keys:
                raise SchemaError(f"{where}: only an enum of map keys is supported")
            allowed = ", ".join(f"'{k}'" for k in keys["enum"])
            out.setdefault("x-kubernetes-validations", []).append(
                {
                    "rule": f"self.all(k, k in [{allowed}])",
                    "message": f"keys must be one of {', '.join(keys['enum'])}",
                }
            )
        elif key == "required":
            out[key] = sorted(value)
        elif key == "exclusiveMinimum" or key == "exclusiveMaximum":
            # JSON Schema 2020-12 gives the bound; OpenAPI v3 (draft 4) a flag next to minimum/maximum.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "x-kubernetes-validations":
            out.setdefault(key, [])
            out[key] = [dict(rule) for rule in value] + out[key]
        elif key.startswith("x-kubernetes-"):
            out[key] = copy.deepcopy(value)
        elif key == "description":
            # Docstrings are reStructuredText; `kubectl explain` shows plain text.
            out[key] = value.replace("``", "`")
        elif key in _PASSTHROUGH:
            out[key] = copy.deepcopy(value)
        else:
            raise SchemaError(f"{where}: JSON Schema keyword {key!r} has no structural equivalent")

    if out.get("x-kubernetes-preserve-unknown-fields") and "properties" not in out:
        out.setdefault("type", "object")
    if "type" not in out:
        raise SchemaError(f"{path or '<root>'}: every node of a structural schema needs a type")
    if "properties" in out and "additionalProperties" in out:
        raise SchemaError(f"{path}: properties and additionalProperties are mutually exclusive")
    return out


def model_schema(model: type[Model], mode: Literal["validation", "serialization"] = "validation") -> Schema:
    """The structural OpenAPI v3 schema of ``model`` (aliases, as written in manifests)."""
    raw = model.model_json_schema(by_alias=True, mode=mode)
    defs: dict[str, Schema] = raw.pop("$defs", {})
    return structural(raw, defs, model.__name__)


def resource_schema(model: type[Model], status: type[Model] | None) -> Schema:
    """The openAPIV3Schema of a whole resource: standard envelope, the spec, and the status as written."""
    schema = model_schema(model)
    properties = schema["properties"]
    properties["apiVersion"] = {"type": "string", "description": _STANDARD_DESCRIPTIONS["apiVersion"]}
    properties["kind"] = {"type": "string", "description": _STANDARD_DESCRIPTIONS["kind"]}
    # The API server owns metadata's schema; a CRD may only say it is an object.
    properties["metadata"] = {"type": "object"}
    if status is not None:
        # Status is what the operator writes: describe the serialized form.
        described = properties["status"].get("description")
        properties["status"] = model_schema(status, "serialization")
        if described:
            properties["status"]["description"] = described
    schema["required"] = sorted(set(schema.get("required", [])) - {"apiVersion", "kind", "metadata"})
    if not schema["required"]:
        del schema["required"]
    return schema


@dataclass(frozen=True)
class Column:
    """One ``kubectl get`` column."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def render(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


AGE = Column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Kind:
    """Everything the CRD of one kind needs besides the schema."""

    model: type[Model]
    status: type[Model] | None
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: Literal["Namespaced", "Cluster"]
    columns: tuple[Column, ...]

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


KINDS: tuple[Kind, ...] = (
    Kind(
        model=aisystem.AISystem,
        status=aisystem.AISystemStatus,
        kind="AISystem",
        plural="aisystems",
        singular="aisystem",
        short_names=("ais",),
        scope="Namespaced",
        columns=(
            Column("Phase", ".status.phase", description="Healthy, Degraded, Contained, ShutDown, Unknown, Invalid."),
            Column("Severity", ".status.severity", description="Highest active severity."),
            Column("Incident", ".status.incident", description="The open AIIncident."),
            Column("Target", ".spec.target.name", description="The workload serving the model."),
            Column("Mode", ".spec.mode", description="enforce or dryRun."),
            AGE,
            Column("Policy", ".spec.policyRef.name", description="The ContainmentPolicy.", priority=1),
            Column("Owner", ".spec.owner", description="Owning team.", priority=1),
        ),
    ),
    Kind(
        model=policy.ContainmentPolicy,
        status=policy.ContainmentPolicyStatus,
        kind="ContainmentPolicy",
        plural="containmentpolicies",
        singular="containmentpolicy",
        short_names=("cpol",),
        scope="Cluster",
        columns=(
            Column("Description", ".spec.description", description="What kind of system this policy is for."),
            AGE,
        ),
    ),
    Kind(
        model=incident.AIIncident,
        status=incident.AIIncidentStatus,
        kind="AIIncident",
        plural="aiincidents",
        singular="aiincident",
        short_names=("aii",),
        scope="Namespaced",
        columns=(
            Column("System", ".spec.system", description="The AISystem."),
            Column("Severity", ".spec.severity", description="Current severity."),
            Column("Phase", ".status.phase", description="Open, Contained, Resolved or Closed."),
            Column("TTC", ".status.timeToContainSeconds", "number", "Seconds from detection to containment."),
            Column("Drill", ".spec.drill", "boolean", "A rehearsal."),
            AGE,
            Column("Failure Mode", ".spec.failureMode", description="How the system failed.", priority=1),
            Column("Acknowledged By", ".status.acknowledgedBy", description="Who acknowledged.", priority=1),
        ),
    ),
)


def build_crd(kind: Kind) -> dict[str, Any]:
    """The ``apiextensions.k8s.io/v1`` CustomResourceDefinition of one kind."""
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": resource_schema(kind.model, kind.status)},
        "subresources": {"status": {}},
        "additionalPrinterColumns": [column.render() for column in kind.columns],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "airlock", "app.kubernetes.io/part-of": "airlock"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "scope": kind.scope,
            "versions": [version],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    """The CRDs of every kind, in a stable order."""
    return [build_crd(kind) for kind in KINDS]
