"""What the V2X control tests share: a home with an export limit, a bidirectional 2.1
charger on a test-moved clock, the setpoints a charger received, the two-way check."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from custom_components.smart_charge.engine import Panel, Site
from tests.control.safety_rig import VOLTS, ChargerSpec, ProbedCharger, SafetyRig

HOUSE_KW = 5.0
EXPORT_KW = 2.0
STEP = timedelta(seconds=30)


class Clock:
    """The simulated chargers' clock, moved by the test (no real waiting)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def move(self, delta: timedelta) -> None:
        self.now += delta


def home(limit_kw: float = 22.0) -> Site:
    return Site(
        panels=[
            Panel(
                id="main",
                limit_kw=limit_kw,
                unmanaged_load_kw=HOUSE_KW,
                export_limit_kw=EXPORT_KW,
            )
        ],
        voltage_v=VOLTS,
    )


def v2x_spec(
    charger_id: str, clock: Callable[[], datetime], **options: Any
) -> ChargerSpec:
    allow = options.pop("allow_discharge", True)
    return ChargerSpec(
        charger_id,
        "main",
        version="2.1",
        strict=True,
        allow_discharge=allow,
        min_soc_pct=40.0,
        sim_options={
            "bidirectional": True,
            "capacity_kwh": 10.0,
            "soc_pct": 45.0,
            "clock": clock,
            **options,
        },
    )


def setpoints(charger: ProbedCharger) -> list[float]:
    """Return every setpoint the charger received, in profiles and updates."""
    found: list[float] = []
    for frame in charger.frames:
        if len(frame) != 4 or frame[0] != 2:
            continue
        if frame[2] == "SetChargingProfile":
            profile = frame[3].get("chargingProfile", {})
            found.extend(
                float(period.get("setpoint", 0.0))
                for schedule in profile.get("chargingSchedule", ())
                for period in schedule.get("chargingSchedulePeriod", ())
                if "setpoint" in period or "operationMode" in period
            )
        elif frame[2] == "UpdateDynamicSchedule":
            update = frame[3].get("scheduleUpdate", {})
            if "setpoint" in update:
                found.append(float(update["setpoint"]))
    return found


def assert_both_ways(rig: SafetyRig) -> None:
    """Sample once more; neither direction broke at any sample."""
    rig.sample("final check")
    assert rig.samples > 0
    assert not rig.violations, rig.violations[0]
    assert not rig.export_violations, rig.export_violations[0]
    assert not rig.probe_errors, rig.probe_errors[0]
