"""Connection hygiene, pure parts: attempt budget and backoff with jitter."""

from __future__ import annotations

from infra.backoff import Backoff
from producers.session import AttemptBudget

S = 1_000_000_000


def test_attempt_budget_allows_300_per_5_minutes_then_says_how_long_to_wait() -> None:
    now = [0]
    budget = AttemptBudget(300, 300.0, lambda: now[0])
    for i in range(300):
        now[0] = i * S // 10
        assert budget.try_acquire() == 0.0
    now[0] = 40 * S
    assert budget.try_acquire() == 260.0  # the first attempt (t=0) leaves the window at t=300 s
    now[0] = 300 * S
    assert budget.try_acquire() == 0.0


def test_backoff_doubles_to_the_cap_with_jitter_and_resets() -> None:
    low = Backoff(0.1, 2.0, rand=lambda: 0.0)
    high = Backoff(0.1, 2.0, rand=lambda: 1.0)
    assert [round(low.next_delay(), 3) for _ in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert [round(high.next_delay(), 3) for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    low.reset()
    assert low.next_delay() == 0.05
