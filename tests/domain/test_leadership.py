"""Leader election decisions (client-go's rules), with fake monotonic clocks."""

from __future__ import annotations

import datetime

import pytest

from airlock.domain import leadership
from airlock.domain.leadership import Observed, Record, Step, Term, Timing

T0 = datetime.datetime(2026, 11, 26, 14, 2, tzinfo=datetime.UTC)
TIMING = Timing(lease_duration=4.0, renew_deadline=3.0, retry_period=0.5)


def held(by: str, *, renewed: datetime.datetime = T0, transitions: int = 0) -> Record:
    return Record(holder=by, lease_duration_seconds=4, acquire_time=T0, renew_time=renewed, transitions=transitions)


def test_default_timing_is_valid() -> None:
    assert Timing().problems() == []
    assert TIMING.problems() == []


@pytest.mark.parametrize(
    ("timing", "needle"),
    [
        (Timing(lease_duration=4.0, renew_deadline=4.0, retry_period=0.5), "--renew-deadline (4s) must be shorter"),
        (Timing(lease_duration=4.0, renew_deadline=5.0, retry_period=0.5), "must be shorter than --lease-duration"),
        (Timing(lease_duration=4.0, renew_deadline=1.2, retry_period=1.0), "longer than 1.2 × --retry-period"),
        (Timing(lease_duration=4.5, renew_deadline=3.0, retry_period=0.5), "--lease-duration must be whole seconds"),
        (Timing(lease_duration=0.0, renew_deadline=-1.0, retry_period=0.5), "at least 1"),
        (Timing(lease_duration=4.0, renew_deadline=3.0, retry_period=0.0), "--retry-period must be positive"),
    ],
)
def test_invalid_timing_is_named_by_its_flag(timing: Timing, needle: str) -> None:
    assert any(needle in p for p in timing.problems()), timing.problems()


def test_no_lease_means_create() -> None:
    observed = leadership.observe(None, None, None, now=100.0)
    assert leadership.next_step(observed, "a", now=100.0) is Step.CREATE


def test_a_lease_renewed_by_someone_else_is_waited_for_then_taken_over_after_the_lease_duration() -> None:
    observed = leadership.observe(None, held("b"), "1", now=100.0)
    assert leadership.next_step(observed, "a", now=100.0) is Step.WAIT
    assert leadership.next_step(observed, "a", now=103.9) is Step.WAIT
    assert leadership.next_step(observed, "a", now=104.0) is Step.ACQUIRE


def test_every_change_of_the_record_restarts_the_observers_clock() -> None:
    observed = leadership.observe(None, held("b"), "1", now=100.0)
    # b renews at 103: the record changed, so the wait starts again from when it was seen.
    observed = leadership.observe(observed, held("b", renewed=T0 + datetime.timedelta(seconds=3)), "2", now=103.2)
    assert observed.since == 103.2
    assert leadership.next_step(observed, "a", now=107.0) is Step.WAIT
    assert leadership.next_step(observed, "a", now=107.2) is Step.ACQUIRE


def test_an_unchanged_record_keeps_its_first_sighting_even_when_its_resource_version_moved() -> None:
    # e.g. someone relabelled the Lease: the holder did not renew.
    observed = leadership.observe(None, held("b"), "1", now=100.0)
    observed = leadership.observe(observed, held("b"), "7", now=102.0)
    assert (observed.since, observed.resource_version) == (100.0, "7")


@pytest.mark.parametrize("skew", [datetime.timedelta(hours=-5), datetime.timedelta(0), datetime.timedelta(days=3)])
def test_expiry_never_reads_the_renew_time_so_clock_offsets_do_not_matter(skew: datetime.timedelta) -> None:
    # b's wall clock is off by `skew`: its renewTime says so, and the decision does not change.
    record = held("b", renewed=T0 + skew)
    observed = leadership.observe(None, record, "1", now=50.0)
    assert leadership.next_step(observed, "a", now=53.9) is Step.WAIT
    assert leadership.next_step(observed, "a", now=54.0) is Step.ACQUIRE


def test_a_released_lease_is_taken_at_once() -> None:
    released = leadership.released(held("b", transitions=3), T0)
    assert (released.holder, released.lease_duration_seconds, released.transitions) == ("", 1, 3)
    observed = leadership.observe(None, released, "9", now=10.0)
    assert leadership.next_step(observed, "a", now=10.0) is Step.ACQUIRE


def test_the_holder_renews_its_own_lease() -> None:
    observed = leadership.observe(None, held("a"), "1", now=0.0)
    assert leadership.next_step(observed, "a", now=100.0) is Step.RENEW


def test_records_written_on_create_acquire_and_renew() -> None:
    later = T0 + datetime.timedelta(seconds=30)
    created = leadership.acquired(None, "a", T0, TIMING)
    assert created == Record("a", 4, T0, T0, 0)
    taken = leadership.acquired(held("b", transitions=2), "a", later, TIMING)
    assert (taken.holder, taken.acquire_time, taken.renew_time, taken.transitions) == ("a", later, later, 3)
    renewed = leadership.renewed(taken, "a", later + datetime.timedelta(seconds=1), TIMING)
    assert (renewed.acquire_time, renewed.transitions) == (later, 3)
    assert renewed.renew_time == later + datetime.timedelta(seconds=1)


def test_a_holder_acts_only_until_the_renew_deadline_after_its_last_renewal_was_sent() -> None:
    term = Term(renewed_at=200.0)
    assert term.acting(200.0, TIMING)
    assert term.acting(202.99, TIMING)
    assert not term.acting(203.0, TIMING)
    assert term.must_step_down(1000.0, TIMING)


@pytest.mark.parametrize(("latency", "poll"), [(0.0, 0.0), (0.3, 0.49), (1.5, 0.2)])
def test_the_old_leader_stops_before_a_candidate_can_start(latency: float, poll: float) -> None:
    """The margin: whatever the request latency and polling phase, and with clocks offset by hours."""
    leader_offset, candidate_offset = 0.0, 7200.0  # the two monotonic clocks share nothing but their rate
    # The leader sends its last successful renewal at t=10 (true time); the server stores it at
    # 10 + latency; the candidate reads it on its next poll after that.
    sent_true = 10.0
    term = Term(renewed_at=sent_true + leader_offset)
    seen_true = sent_true + latency + poll
    observed = leadership.observe(None, held("leader"), "5", now=seen_true + candidate_offset)
    stop_true = next(t / 100 for t in range(1000, 3000) if not term.acting(t / 100 + leader_offset, TIMING))
    start_true = next(
        t / 100
        for t in range(1000, 3000)
        if leadership.next_step(observed, "candidate", t / 100 + candidate_offset) is Step.ACQUIRE
    )
    assert start_true - stop_true >= TIMING.lease_duration - TIMING.renew_deadline - 0.011


def test_conflicting_leases_are_those_someone_still_holds() -> None:
    live = leadership.observe(None, held("x"), "1", now=100.0)
    stale = leadership.observe(None, held("y"), "1", now=90.0)
    released = leadership.observe(None, leadership.released(held("z"), T0), "1", now=100.0)
    others: list[tuple[str, Observed]] = [("airlock", live), ("airlock-shard-0-of-2", stale), ("b", released)]
    assert leadership.conflicts(others, now=101.0) == ["airlock"]
    assert leadership.conflicts(others, now=104.0) == []
