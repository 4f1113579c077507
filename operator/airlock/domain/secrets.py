"""Which Secrets the operator may read: the notification channels' credentials, by name only.

The operator's RBAC grants ``get`` on Secrets only for a short list of names
(``airlock run --notification-secret``, chart value ``notificationSecrets``;
default ``airlock-notify``) — never every Secret of every namespace.  A channel
whose ``secretRef`` names another Secret could never be delivered (the API
server would answer 403 at the first notice), so it is refused up front, on the
AISystem, naming the field and the names allowed.

No CRD rule can say this: the list is the operator's setting, not the API's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airlock.api.notifications import Channel

DEFAULT_NOTIFICATION_SECRET = "airlock-notify"


@dataclass(frozen=True)
class Refusal:
    """One channel whose Secret the operator may not read."""

    channel: str
    field: str  # e.g. "spec.notifications.channels[1].secretRef.name"
    secret: str

    def message(self, allowed: Sequence[str]) -> str:
        names = ", ".join(allowed) or "none"
        return (
            f"{self.field}: Secret {self.secret!r} (channel {self.channel}) is not one airlock may read; "
            f"allowed: {names} (airlock run --notification-secret, chart value notificationSecrets)"
        )


def refusals(
    system_channels: Sequence[Channel],
    policy_channels: Sequence[Channel],
    allowed: Sequence[str],
    *,
    policy: str | None = None,
) -> list[Refusal]:
    """The channels in force (the system's replace the policy's of the same name) with a Secret not in ``allowed``."""
    own = {c.name for c in system_channels}
    found: list[Refusal] = []
    for prefix, channels in (
        (f"ContainmentPolicy {policy} spec.notifications.channels", [c for c in policy_channels if c.name not in own]),
        ("spec.notifications.channels", list(system_channels)),
    ):
        for channel in channels:
            ref = channel.secret_ref
            if ref is None or ref.name in allowed:
                continue
            index = _index(system_channels if prefix.startswith("spec") else policy_channels, channel)
            found.append(Refusal(channel.name, f"{prefix}[{index}].secretRef.name", ref.name))
    return found


def _index(channels: Sequence[Channel], channel: Channel) -> int:
    return next(i for i, c in enumerate(channels) if c.name == channel.name)
