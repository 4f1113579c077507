"""``--shard I/N``: a stable split of namespaces, every namespace served exactly once."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from airlock.domain import sharding
from airlock.domain.sharding import Shard

NAMESPACES = [f"team{n}" for n in range(500)] + ["ml-prod", "ml-staging", "default", "kube-system", "é-ünïcode"]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_every_namespace_belongs_to_exactly_one_shard(count: int) -> None:
    shards = [Shard(i, count) for i in range(count)]
    for namespace in NAMESPACES:
        assert [s.index for s in shards if s.owns(namespace)] == [sharding.shard_of(namespace, count)]


def test_shards_are_roughly_balanced() -> None:
    sizes = [sum(Shard(i, 4).owns(ns) for ns in NAMESPACES) for i in range(4)]
    assert min(sizes) > len(NAMESPACES) / 4 * 0.7, sizes


def test_the_hash_is_the_documented_one_and_does_not_depend_on_the_process() -> None:
    expected = int.from_bytes(hashlib.sha256(b"ml-prod").digest()[:8], "big") % 3
    assert sharding.shard_of("ml-prod", 3) == expected
    # Python's own hash() is salted per process: a fresh interpreter must agree with this one.
    code = "from airlock.domain.sharding import shard_of; print([shard_of(f'team{n}', 5) for n in range(50)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str([sharding.shard_of(f"team{n}", 5) for n in range(50)])


@pytest.mark.parametrize(
    ("text", "shard"), [("0/1", Shard(0, 1)), ("2/3", Shard(2, 3)), (" 1 / 2 ", Shard(1, 2)), ("0/16", Shard(0, 16))]
)
def test_parse(text: str, shard: Shard) -> None:
    assert Shard.parse(text) == shard


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("3/3", "numbered 0 to 2"),
        ("0/0", "at least 1"),
        ("1", "expected I/N"),
        ("-1/2", "expected I/N"),
        ("a/b", "I/N"),
    ],
)
def test_bad_shards_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Shard.parse(text)


def test_lease_names_and_labels() -> None:
    assert Shard().lease_name() == "airlock"  # SPEC §10: unsharded, the Lease is `airlock`
    assert Shard(1, 3).lease_name() == "airlock-shard-1-of-3"
    assert Shard(1, 3).labels()[sharding.COUNT_LABEL] == "3"
    assert Shard().labels()[sharding.COUNT_LABEL] == "1"
    assert Shard().owns("anything")
