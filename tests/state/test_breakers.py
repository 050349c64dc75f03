"""The breaker board on both backends (tests/backends.py); the rules are tested in
tests/providers/test_resilience.py, here what each board's storage must guarantee."""

from __future__ import annotations

import time

import pytest

from kb.errors import CircuitOpen, StoreError
from tests.backends import ManualClock, together


def test_a_provider_appears_closed_once_called_and_failures_are_counted(backend):
    board = backend.breakers(failure_threshold=3, cooldown_s=60)
    assert board.states() == {}
    board.acquire("b")
    board.acquire("a")
    board.failure("a")
    assert backend.breakers(3, 60).states() == {
        "a": {"state": "closed", "failures": 1, "opened_at": None},
        "b": {"state": "closed", "failures": 0, "opened_at": None},
    }
    board.success("a")
    assert board.states()["a"] == {"state": "closed", "failures": 0, "opened_at": None}


def test_failures_from_many_instances_at_once_are_all_counted(backend):
    boards = [backend.breakers(failure_threshold=1000, cooldown_s=60) for _ in range(4)]

    def fail(board) -> None:
        for _ in range(25):
            board.failure("p")

    together(fail, [(b,) for b in boards])
    assert boards[0].states()["p"]["failures"] == 100  # no lost update


def test_the_cooldown_runs_on_the_boards_clock(backend):
    board = backend.breakers(failure_threshold=1, cooldown_s=60)  # the real clock (Redis: the server's)
    board.failure("p")
    opened_at = board.states()["p"]["opened_at"]
    assert opened_at is not None and opened_at == pytest.approx(time.time(), abs=5)


def test_instances_racing_for_the_half_open_probe_let_exactly_one_through(backend):
    clock = ManualClock()
    boards = [backend.breakers(failure_threshold=1, cooldown_s=30, clock=clock) for _ in range(6)]
    boards[0].failure("p")
    assert boards[0].states()["p"]["opened_at"] == clock.now
    for b in boards:
        with pytest.raises(CircuitOpen, match="open"):
            b.acquire("p")
    clock.advance(30.5)
    outcomes: list[str] = []

    def probe(board) -> None:
        try:
            board.acquire("p")
            outcomes.append("probe")
        except CircuitOpen:
            outcomes.append("skipped")

    together(probe, [(b,) for b in boards])
    assert sorted(outcomes) == ["probe"] + ["skipped"] * 5


def test_redis_down_raises_store_error_naming_the_server_and_the_board_outlives_a_restart(
    redis_backend, redis_outage, redis_server
):
    board = redis_backend.breakers(failure_threshold=1, cooldown_s=60)
    board.failure("p")
    redis_outage.stop()
    for call in (lambda: board.acquire("p"), lambda: board.failure("p"), board.states):
        with pytest.raises(StoreError, match=f"shared state at {redis_server.url} is unreachable"):
            call()
    redis_outage.start()
    with pytest.raises(CircuitOpen):  # the same client reconnects, and the state was kept
        board.acquire("p")
    board.success("p")
    assert board.states()["p"]["state"] == "closed"
