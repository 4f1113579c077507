"""Delivery channels: where notices go, and which audiences are sent rather than only drafted.

Declared on a ContainmentPolicy or an AISystem (``spec.notifications``); the
system's channels are merged over the policy's by name.  Secrets (URLs with
tokens, HMAC keys, routing keys, SMTP passwords) come only from a Secret in the
system's namespace, never from the spec.

Secret keys by channel type:

- ``webhook``: ``url`` (unless ``spec.url`` is given) and ``hmacKey`` (required:
  every body is signed, ``X-Airlock-Signature: sha256=<hex>``);
- ``slack``: ``url`` (the incoming-webhook URL);
- ``pagerduty``: ``routingKey`` (Events API v2 integration key);
- ``email``: ``username`` and ``password`` (optional: unauthenticated relay).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, model_validator

from airlock.api.common import Audience, Model, Severity

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_CHANNELS = 16


class ChannelType(StrEnum):
    """How a notice is delivered."""

    WEBHOOK = "webhook"
    SLACK = "slack"
    PAGERDUTY = "pagerduty"
    EMAIL = "email"


class SecretRef(Model):
    """A Secret in the system's namespace."""

    name: str = Field(pattern=NAME_PATTERN, max_length=253, description="Secret name.")


class Email(Model):
    """SMTP settings of an e-mail channel (credentials, if any, from the Secret)."""

    host: str = Field(min_length=1, description="SMTP server host.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    sender: str = Field(alias="from", min_length=3, description="From address.")
    to: list[str] = Field(min_length=1, max_length=50, description="Recipients.")
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")


class Channel(Model):
    """One delivery channel."""

    name: str = Field(pattern=NAME_PATTERN, max_length=63, description="Unique name within the plan.")
    type: ChannelType = Field(description="webhook, slack, pagerduty or email.")
    audiences: list[Audience] = Field(
        default_factory=lambda: [Audience.INTERNAL],
        min_length=1,
        max_length=3,
        description="Audiences whose notices this channel carries (default internal).",
    )
    severities: list[Severity] = Field(
        default_factory=list, max_length=4, description="Only incidents of these severities (default: all)."
    )
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2048,
        description="Endpoint without secrets (webhook; PagerDuty events URL override). Otherwise from the Secret.",
    )
    secret_ref: SecretRef | None = Field(default=None, alias="secretRef", description="Where the secrets are.")
    email: Email | None = Field(default=None, description="SMTP settings (type email).")

    cel_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "self.type != 'email' || has(self.email)",
            "message": "an email channel needs email settings",
            "fieldPath": ".email",
            "reason": "FieldValueRequired",
        },
        {
            "rule": "self.type == 'email' || !has(self.email)",
            "message": "email settings are only for type email",
            "fieldPath": ".email",
        },
        {
            "rule": "!(self.type in ['webhook', 'slack', 'pagerduty']) || has(self.secretRef)",
            "message": "webhook, slack and pagerduty channels need secretRef (HMAC key, URL or routing key)",
            "fieldPath": ".secretRef",
            "reason": "FieldValueRequired",
        },
    ]

    @model_validator(mode="after")
    def _coherent(self) -> Channel:
        if self.type is ChannelType.EMAIL and self.email is None:
            raise ValueError("email: an email channel needs email settings")
        if self.type is not ChannelType.EMAIL and self.email is not None:
            raise ValueError("email: only for type email")
        if self.type is not ChannelType.EMAIL and self.secret_ref is None:
            raise ValueError(f"secretRef: a {self.type.value} channel needs secretRef (HMAC key, URL or routing key)")
        if len(set(self.audiences)) != len(self.audiences):
            raise ValueError("audiences: must not repeat")
        return self


LIST_MAP_BY_NAME: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}


class Notifications(Model):
    """Delivery of notices: channels, and the audiences sent automatically."""

    channels: list[Channel] = Field(
        default_factory=list,
        max_length=MAX_CHANNELS,
        description="Delivery channels (an AISystem's channel replaces the policy's of the same name).",
        json_schema_extra=LIST_MAP_BY_NAME,
    )
    auto_send: list[Audience] | None = Field(
        default=None,
        alias="autoSend",
        max_length=3,
        description=(
            "Audiences delivered without a human (default [internal]). Regulator and user notices are only "
            "drafted unless listed here."
        ),
    )

    @model_validator(mode="after")
    def _unique(self) -> Notifications:
        seen: set[str] = set()
        for index, channel in enumerate(self.channels):
            if channel.name in seen:
                raise ValueError(f"channels[{index}].name: duplicate name {channel.name!r}")
            seen.add(channel.name)
        return self
