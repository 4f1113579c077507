"""``airlock run --shard I/N``: which namespaces a shard serves, and the name of its Lease.

Past what one leader can serve, N operator Deployments split the namespaces
between them: shard I of N serves exactly the namespaces whose hash is I
modulo N, and elects its leader on its own Lease, so N leaders run on one
cluster and never act on the same AISystem.

The hash is stable across processes, Python versions and machines (Python's
``hash()`` is salted per process, so it is not used): the first 8 bytes of
SHA-256 of the namespace's name (UTF-8), read as a big-endian unsigned
integer, modulo N.  To find a namespace's shard by hand::

    python3 -c 'import hashlib,sys; print(int.from_bytes(hashlib.sha256(sys.argv[1].encode()).digest()[:8], "big") % 3)' ml-prod

A namespace never moves between shards while N stays the same.  Changing N
moves most namespaces, so a replica refuses to lead while a Lease of another
shard count is still held (``airlock.domain.leadership.conflicts``): during a
rollout from N to M shards, the old shards keep acting until they stop, then
the new ones take over — never both.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

LEASE_BASE = "airlock"
# Labels on every Lease airlock creates: how replicas of a different shard count find each other.
COUNT_LABEL = "airlock.dev/shard-count"
INDEX_LABEL = "airlock.dev/shard"

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def shard_of(namespace: str, count: int) -> int:
    """The shard (0 … count−1) that serves ``namespace``."""
    digest = hashlib.sha256(namespace.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` with 0 ≤ I < N; a ValueError says what is wrong."""
        match = _SHARD.match(text)
        if match is None:
            raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/3 (shard 0 of 3)")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1:
            raise ValueError(f"--shard {text!r}: the shard count must be at least 1")
        if index >= count:
            raise ValueError(f"--shard {text!r}: shards are numbered 0 to {count - 1}")
        return cls(index, count)

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owns(self, namespace: str) -> bool:
        return not self.sharded or shard_of(namespace, self.count) == self.index

    def lease_name(self) -> str:
        """``airlock`` unsharded (SPEC §10), ``airlock-shard-I-of-N`` for shard I of N."""
        return f"{LEASE_BASE}-shard-{self.index}-of-{self.count}" if self.sharded else LEASE_BASE

    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": "airlock", COUNT_LABEL: str(self.count), INDEX_LABEL: str(self.index)}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
