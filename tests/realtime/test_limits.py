"""The frame budget: every frame counts; one error, then silence, then a close."""

from __future__ import annotations

from rooms.realtime.limits import FrameBudget, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_past_the_limit_one_error_then_silence_then_a_close() -> None:
    budget = FrameBudget(5, clock=Clock())
    verdicts = [budget.spend() for _ in range(11)]
    assert verdicts[:5] == [Verdict.OK] * 5
    assert verdicts[5] == Verdict.REFUSE
    assert verdicts[6:10] == [Verdict.IGNORE] * 4
    assert verdicts[10] == Verdict.CLOSE


def test_the_window_slides_and_forgives() -> None:
    clock = Clock()
    budget = FrameBudget(3, clock=clock)
    assert [budget.spend() for _ in range(4)][-1] == Verdict.REFUSE
    clock.now = 10.5  # the first frames left the window
    assert budget.spend() == Verdict.OK
    assert [budget.spend() for _ in range(3)][-1] == Verdict.REFUSE  # warned afresh
