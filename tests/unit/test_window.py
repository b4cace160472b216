"""Deploy-window arithmetic with fixed instants, daylight saving included (America/Los_Angeles)."""

from datetime import UTC, datetime, timedelta

import pytest

from adroit.api.settings import DeployWindow, parse_settings
from adroit.api.train import Phase
from adroit.plan.window import can_start_promotion, next_promotion_start, window_state
from tests.unit.sim import Sim, spec


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def window(**fields: object) -> DeployWindow:
    return DeployWindow.model_validate(fields)


DEFAULT = window()  # Mon-Fri 09:00-16:00 America/Los_Angeles


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (utc(2026, 11, 23, 16, 59), False),  # Monday 08:59 PST
        (utc(2026, 11, 23, 17, 0), True),  # Monday 09:00 PST
        (utc(2026, 11, 23, 23, 59), True),  # Monday 15:59 PST
        (utc(2026, 11, 24, 0, 0), False),  # Monday 16:00 PST: closed
        (utc(2026, 11, 28, 20, 0), False),  # Saturday noon
        (utc(2026, 7, 6, 16, 0), True),  # Monday 09:00 PDT (summer: UTC-7)
        (utc(2026, 7, 6, 15, 59), False),
    ],
)
def test_open_in_local_hours(now: datetime, is_open: bool) -> None:
    assert window_state(DEFAULT, now).open is is_open


def test_weekend_waits_for_monday_morning() -> None:
    state = window_state(DEFAULT, utc(2026, 11, 28, 20, 0))
    assert state.opens_at == utc(2026, 11, 30, 17, 0)
    assert "outside deploy hours (Mon, Tue, Wed, Thu, Fri 09:00-16:00" in state.why_closed


def test_spring_forward_moves_the_window_an_hour_earlier_in_utc() -> None:
    # DST starts Sunday 2026-03-08: Friday opens 17:00 UTC, Monday 16:00 UTC.
    assert window_state(DEFAULT, utc(2026, 3, 6, 16, 30)).opens_at == utc(2026, 3, 6, 17, 0)
    friday_close = window_state(DEFAULT, utc(2026, 3, 6, 18, 0)).closes_at
    assert friday_close == utc(2026, 3, 7, 0, 0)
    assert window_state(DEFAULT, utc(2026, 3, 7, 1, 0)).opens_at == utc(2026, 3, 9, 16, 0)


def test_fall_back_moves_the_window_an_hour_later_in_utc() -> None:
    # DST ends Sunday 2026-11-01: Friday opens 16:00 UTC, Monday 17:00 UTC.
    assert window_state(DEFAULT, utc(2026, 10, 30, 15, 0)).opens_at == utc(2026, 10, 30, 16, 0)
    assert window_state(DEFAULT, utc(2026, 10, 31, 1, 0)).opens_at == utc(2026, 11, 2, 17, 0)


def test_a_night_window_on_the_change_days_is_as_long_as_the_clock_says() -> None:
    nightly = window(days=["Sun"], start="01:00", end="03:00")
    # 2026-03-08: 02:00-03:00 never happens, so the window lasts one hour.
    spring = window_state(nightly, utc(2026, 3, 8, 9, 30))
    assert spring.open
    assert spring.closes_at == utc(2026, 3, 8, 10, 0)
    assert window_state(nightly, utc(2026, 3, 8, 8, 0)).opens_at == utc(2026, 3, 8, 9, 0)
    # 2026-11-01: 01:00-02:00 happens twice, so it lasts three hours.
    autumn_opens = window_state(nightly, utc(2026, 11, 1, 7, 0)).opens_at
    assert autumn_opens == utc(2026, 11, 1, 8, 0)
    assert window_state(nightly, utc(2026, 11, 1, 8, 0)).closes_at == utc(2026, 11, 1, 11, 0)


def test_freezes_close_whole_days() -> None:
    frozen = window(freezes=[{"start": "2026-12-24", "end": "2026-12-28", "reason": "holidays"}])
    state = window_state(frozen, utc(2026, 12, 24, 18, 0))  # Thursday 10:00 PST
    assert not state.open
    assert state.why_closed == "deploy freeze: holidays"
    assert state.opens_at == utc(2026, 12, 29, 17, 0)  # Tuesday after the freeze
    # The day before a freeze closes at the usual hour.
    assert window_state(frozen, utc(2026, 12, 23, 18, 0)).closes_at == utc(2026, 12, 24, 0, 0)


def test_always_open_still_honours_freezes() -> None:
    always = window(alwaysOpen=True, freezes=[{"start": "2026-12-24", "end": "2026-12-24"}])
    state = window_state(always, utc(2026, 12, 23, 12, 0))
    assert state.open
    assert state.closes_at == utc(2026, 12, 24, 8, 0)
    assert window_state(window(alwaysOpen=True), utc(2026, 6, 1, 12, 0)).closes_at is None


def test_no_promotion_that_cannot_finish_before_close() -> None:
    lead = timedelta(minutes=90)
    assert can_start_promotion(DEFAULT, utc(2026, 11, 23, 22, 30), lead)  # 14:30, done 16:00
    assert not can_start_promotion(DEFAULT, utc(2026, 11, 23, 22, 31), lead)
    start = next_promotion_start(DEFAULT, utc(2026, 11, 23, 23, 0), lead)
    assert start == utc(2026, 11, 24, 17, 0)  # Tuesday 09:00


# --- the same rules through the train state machine --------------------

WEEKDAYS = """
deployWindow: {timezone: America/Los_Angeles, start: "09:00", end: "16:00"}
timeouts: {stagingTimeout: 2m, verifyFor: 30s, promotionLeadTime: 90m, promotionTimeout: 2m}
runtimes: {scikit-learn-2022-10: repo/sklearn:1}
"""


def test_train_waits_for_the_window_and_says_when_it_opens() -> None:
    sim = Sim(parse_settings(WEEKDAYS), now=utc(2026, 11, 28, 20, 0))  # Saturday
    sim.apply_flavor("ads", spec("v1"))
    sim.run(10)
    status = sim.trains[sim.only_train()].status
    assert (status.phase, status.reason) == (Phase.QUEUED, "OutsideDeployWindow")
    assert status.window_opens_at == utc(2026, 11, 30, 17, 0)
    assert "Mon 2026-11-30 09:00 PST" in (status.message or "")
    assert not any(sim.objects.values()), "staging is left alone"


def test_override_window_lets_an_urgent_train_go() -> None:
    sim = Sim(parse_settings(WEEKDAYS), now=utc(2026, 11, 28, 20, 0))
    sim.apply_flavor("ads", spec("v1"))
    sim.run(5)
    train = sim.only_train()
    sim.annotate(train, override_window=True)
    sim.run(40)
    assert sim.phase(train) == Phase.AWAITING_APPROVAL
    sim.approve(train)
    sim.run(5)
    assert sim.phase(train) == Phase.DEPLOYED


def test_at_window_close_unpromoted_trains_go_back_to_the_queue() -> None:
    sim = Sim(parse_settings(WEEKDAYS), now=utc(2026, 11, 23, 23, 59, 45))  # Monday 15:59:45
    sim.apply_flavor("ads", spec("v1"))
    sim.run(40)  # departs, then the window closes at 16:00 while verifying (30s)
    train = sim.only_train()
    status = sim.trains[train].status
    assert status.phase == Phase.QUEUED
    assert (status.history[-1].phase, status.history[-1].reason) == (Phase.QUEUED, "WindowClosed")
    assert status.reason == "OutsideDeployWindow"
    assert not any(sim.objects.values()), "nothing unverified stays in staging overnight"
    sim.now = utc(2026, 11, 24, 17, 0)  # Tuesday 09:00
    sim.run(40)
    assert sim.phase(train) == Phase.AWAITING_APPROVAL
    assert len(sim.trains) == 1, "the same train departs again: no duplicate"


def test_approved_train_waits_when_promotion_would_outlast_the_window() -> None:
    sim = Sim(parse_settings(WEEKDAYS), now=utc(2026, 11, 23, 22, 0))  # Monday 14:00
    sim.apply_flavor("ads", spec("v1"))
    sim.run(40)
    train = sim.only_train()
    sim.now = utc(2026, 11, 23, 22, 45)  # 14:45: a 90 minute promotion would end 16:15
    sim.approve(train)
    sim.run(5)
    status = sim.trains[train].status
    assert (status.phase, status.reason) == (Phase.AWAITING_APPROVAL, "WaitingForPromotionWindow")
    assert status.window_opens_at == utc(2026, 11, 24, 17, 0)
