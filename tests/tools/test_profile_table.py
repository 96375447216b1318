"""The profile table alone: which profile counts when (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tools.simulator import InstalledProfile, ProfileTable

from .helpers import profile

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _table(*bodies: tuple[int, dict[str, object]]) -> ProfileTable:
    table = ProfileTable()
    for cid, body in bodies:
        table.install(
            InstalledProfile.from_wire(cid, body, NOW), replace_same_stack=True
        )
    return table


def _amps(table: ProfileTable, at: datetime, *, running: bool = False) -> float:
    return table.evaluate(
        1,
        now=at,
        hardware_max_a=32.0,
        phases=3,
        voltage_v=230.0,
        transaction=("7", NOW) if running else None,
    ).amps


def test_validity_window_and_duration() -> None:
    future = profile("2.0.1", 2, "TxDefaultProfile", 10, stack_level=2, start=NOW)
    future["validFrom"] = (NOW + timedelta(hours=1)).isoformat()
    short = profile("2.0.1", 3, "TxDefaultProfile", 8, stack_level=1, start=NOW)
    short["chargingSchedule"][0]["duration"] = 600
    table = _table(
        (0, profile("2.0.1", 1, "TxDefaultProfile", 6, start=NOW)),
        (1, future),
        (1, short),
    )
    assert _amps(table, NOW) == 8.0  # stack 2 not valid yet
    assert _amps(table, NOW + timedelta(minutes=11)) == 6.0  # stack 1 over
    assert _amps(table, NOW + timedelta(hours=2)) == 10.0


def test_relative_tx_profile_and_periods() -> None:
    body = profile("1.6", 1, "TxProfile", 16, kind="Relative", transaction_id="7")
    body["chargingSchedule"]["chargingSchedulePeriod"].append(
        {"startPeriod": 60, "limit": 0}
    )
    table = _table((1, body))
    assert _amps(table, NOW, running=True) == 16.0
    assert _amps(table, NOW + timedelta(seconds=61), running=True) == 0.0
    assert _amps(table, NOW) == 32.0  # idle: no TxProfile counts
    table.end_transaction(1, "7")
    assert len(table) == 0


def test_station_cap_in_watts() -> None:
    table = _table(
        (0, profile("1.6", 1, "ChargePointMaxProfile", 4600, unit="W", start=NOW)),
        (1, profile("1.6", 2, "TxDefaultProfile", 16, start=NOW)),
    )
    limit = table.evaluate(
        1, now=NOW, hardware_max_a=32.0, phases=3, voltage_v=230.0, transaction=None
    )
    assert round(limit.amps, 2) == 6.67
    assert limit.station_cap is not None and limit.station_cap.id == 1
