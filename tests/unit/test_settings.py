"""The settings file: SPEC defaults, and a bad file stops the operator naming the field."""

import subprocess
import sys
from datetime import time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adroit.api.settings import (
    SettingsError,
    Weekday,
    format_duration,
    parse_duration,
    parse_settings,
)
from tests.kube import REPO

MINIMAL = "runtimes: {scikit-learn-2022-10: repo/sklearn:1}\n"


def test_defaults_follow_the_specification() -> None:
    settings = parse_settings(MINIMAL)
    window = settings.deploy_window
    assert window.timezone == "America/Los_Angeles"
    assert window.days == [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI]
    assert (window.start, window.end) == (time(9), time(16))
    assert settings.timeouts.staging_timeout == timedelta(minutes=45)
    assert settings.timeouts.verify_for == timedelta(minutes=10)
    assert settings.timeouts.promotion_lead_time == timedelta(minutes=90)
    assert settings.traffic.mirror_cap_percent == 50
    assert settings.approval.separation_of_duties is True
    ns = settings.namespaces
    assert (ns.control, ns.staging, ns.production) == (
        "adroit",
        "adroit-staging",
        "adroit-production",
    )


@pytest.mark.parametrize("name", ["local.yaml", "example.yaml"])
def test_shipped_settings_are_valid(name: str) -> None:
    settings = parse_settings(Path(REPO, "settings", name).read_text())
    assert "scikit-learn-2022-10" in settings.runtimes


def test_local_settings_let_a_train_through_quickly() -> None:
    settings = parse_settings(Path(REPO, "settings", "local.yaml").read_text())
    assert settings.deploy_window.always_open
    assert settings.timeouts.staging_timeout <= timedelta(minutes=5)
    assert settings.timeouts.verify_for <= timedelta(seconds=30)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            MINIMAL + "deployWindow: {timezone: Mars/Olympus}",
            "deployWindow.timezone: unknown time zone",
        ),
        (MINIMAL + "deployWindow: {tz: UTC}", "deployWindow.tz: Extra inputs are not permitted"),
        (MINIMAL + "deployWindow: {days: [Funday]}", "deployWindow.days.0"),
        (MINIMAL + "deployWindow: {start: '17:00', end: '09:00'}", "the window closes"),
        (
            MINIMAL + "timeouts: {verifyFor: ten minutes}",
            "timeouts.verifyFor: 'ten minutes' is not a duration",
        ),
        (MINIMAL + "defaultRuntime: pytorch", "defaultRuntime 'pytorch' is not in runtimes"),
        (MINIMAL + "traffic: {router: nginx}", "traffic.router"),
        (MINIMAL + "traffic: {mirrorCapPercent: 150}", "traffic.mirrorCapPercent"),
        (MINIMAL + "namespaces: {staging: adroit}", "three different namespaces"),
        (MINIMAL + "notifications: {webhookUrl: not-a-url}", "notifications.webhookUrl"),
        ("deployWindow: {alwaysOpen: true}", "runtimes: Field required"),
        ("runtimes: {Bad Name: x}", "runtime name 'Bad Name'"),
        ("- a list", "expected a mapping of settings"),
        ("runtimes: [", "not valid YAML"),
        (
            MINIMAL + "deployWindow: {freezes: [{start: 2026-12-24, end: 2026-12-20}]}",
            "a freeze ends",
        ),
    ],
)
def test_bad_settings_name_the_field(text: str, named: str) -> None:
    with pytest.raises(SettingsError) as error:
        parse_settings(text, "bad.yaml")
    assert named in str(error.value)
    assert str(error.value).startswith("bad.yaml")


def test_operator_refuses_to_start_with_bad_settings(tmp_path: Path) -> None:
    bad = tmp_path / "settings.yaml"
    bad.write_text(MINIMAL + "timeouts: {stagingTimeout: soon}\n")
    result = subprocess.run(
        [sys.executable, "-m", "adroit", "run", "--settings", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "timeouts.stagingTimeout: 'soon' is not a duration" in result.stderr


@given(st.integers(min_value=0, max_value=10 * 24 * 3600))
def test_durations_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("text", "seconds"), [("45m", 2700), ("1h30m", 5400), ("90s", 90), ("0s", 0), (600, 600)]
)
def test_duration_forms(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
