"""Budget sources: power units, solar hysteresis, price forecasts, time-of-use text."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, strategies as st
import pytest

from custom_components.smart_charge.engine import (
    BudgetReason,
    EngineConfigError,
    TimeOfUseWindow,
)
from custom_components.smart_charge.engine.budgets import (
    PriceSlot,
    SolarHysteresis,
    cheapest_slots,
    combine,
    format_time_of_use,
    next_departure,
    parse_price_forecast,
    parse_time_of_use,
    power_kw,
    tariff_allows,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "unit", "invert", "expected"),
    [
        (1500, "W", False, 1.5),
        (2.5, "kW", False, 2.5),
        (1500, None, True, -1.5),
        (0.01, "MW", False, 10.0),
    ],
)
def test_power_kw(
    value: float, unit: str | None, invert: bool, expected: float
) -> None:
    assert power_kw(value, unit, invert=invert) == pytest.approx(expected)


def test_power_kw_rejects_other_units() -> None:
    with pytest.raises(EngineConfigError):
        power_kw(3, "A")


def test_combine_picks_the_binding_limit() -> None:
    assert combine(11, []).reason == BudgetReason.LIMIT
    result = combine(
        11, [(7.0, BudgetReason.LOAD), (4.0, BudgetReason.SOLAR), (-2.0, "x")]
    )
    assert (result.limit_kw, result.reason) == (0.0, "x")
    result = combine(11, [(7.0, BudgetReason.LOAD), (12.0, BudgetReason.SOLAR)])
    assert (result.limit_kw, result.reason) == (7.0, BudgetReason.LOAD)


def test_solar_start_and_stop_delays() -> None:
    solar = SolarHysteresis(1.4, timedelta(minutes=1), timedelta(minutes=5))
    assert solar.update(3.0, T0) is False  # surplus, but not long enough yet
    assert solar.next_change() == T0 + timedelta(minutes=1)
    assert solar.update(3.0, T0 + timedelta(seconds=59)) is False
    assert solar.update(3.0, T0 + timedelta(minutes=1)) is True
    # A cloud shorter than the stop delay changes nothing.
    assert solar.update(0.2, T0 + timedelta(minutes=2)) is True
    assert solar.update(2.0, T0 + timedelta(minutes=6)) is True
    assert solar.next_change() is None
    assert solar.update(0.2, T0 + timedelta(minutes=7)) is True
    assert solar.update(0.2, T0 + timedelta(minutes=12)) is False


@given(st.lists(st.tuples(st.floats(0, 10), st.integers(1, 120)), max_size=40))
def test_solar_never_flips_faster_than_its_delays(
    readings: list[tuple[float, int]],
) -> None:
    solar = SolarHysteresis(1.4, timedelta(seconds=60), timedelta(seconds=300))
    now, state, last_flip = T0, False, T0
    for surplus, step in readings:
        now += timedelta(seconds=step)
        new = solar.update(surplus, now)
        if new != state:
            # A flip needs the condition held for at least the delay.
            assert now - last_flip >= timedelta(seconds=60 if new else 300)
            state, last_flip = new, now
        elif (surplus >= 1.4 and state) or (surplus < 1.4 and not state):
            last_flip = now


def test_solar_rejects_negative_threshold() -> None:
    with pytest.raises(EngineConfigError):
        SolarHysteresis(-1, timedelta(0), timedelta(0))


def test_parse_forecast_formats() -> None:
    dicts = {
        "prices": [
            {
                "start": "2026-11-25T12:00:00+00:00",
                "end": "2026-11-25T13:00:00+00:00",
                "price": 0.3,
            },
            {"start": "2026-11-25T13:00:00+00:00", "value": "0.1"},
            {"start": "bad", "price": 1},
            {"start": "2026-11-25T14:00:00", "price": 1},  # naive: dropped
            {"start": "2026-11-25T15:00:00+00:00", "price": "n/a"},
            "junk",
        ]
    }
    slots = parse_price_forecast(dicts, T0)
    assert [(s.start.hour, s.end.hour, s.price) for s in slots] == [
        (12, 13, 0.3),
        (13, 14, 0.1),
    ]
    arrays = {"today": list(range(24)), "tomorrow": [5.0] * 24, "raw_today": "x"}
    slots = parse_price_forecast(arrays, T0)
    assert len(slots) == 48
    assert slots[3].start == T0.replace(hour=3) and slots[3].price == 3
    assert slots[30].start == T0.replace(hour=6) + timedelta(days=1)
    assert parse_price_forecast({"today": [1, 2, 3]}, T0) == []


def _slots(prices: list[float], start: datetime = T0) -> list[PriceSlot]:
    return [
        PriceSlot(
            start=start + timedelta(hours=i),
            end=start + timedelta(hours=i + 1),
            price=p,
        )
        for i, p in enumerate(prices)
    ]


def test_cheapest_hours_before_departure() -> None:
    slots = _slots([5, 1, 4, 2, 9, 0.5, 3])  # 12:00 .. 18:59
    chosen = cheapest_slots(slots, T0, T0 + timedelta(hours=5), 2)
    assert [s.start.hour for s in chosen] == [13, 15]  # 17:00 (0.5) is after departure
    assert cheapest_slots(slots, T0, T0 + timedelta(hours=5), 0) == []
    departure = time(17, 0)
    assert next_departure(T0, departure) == T0.replace(hour=17)
    assert next_departure(T0.replace(hour=18), departure) == T0.replace(
        hour=17
    ) + timedelta(days=1)
    allowed = [
        tariff_allows(
            now=T0 + timedelta(hours=h),
            current_price=None,
            slots=slots,
            cheapest_hours=2,
            departure=departure,
        )
        for h in range(5)
    ]
    # One plan per cycle: the same two hours stay chosen as time passes.
    assert allowed == [False, True, False, True, False]


def test_threshold_and_no_data() -> None:
    slots = _slots([0.3, 0.1])
    assert tariff_allows(now=T0, current_price=0.2, slots=[], threshold=0.25)
    assert not tariff_allows(now=T0, current_price=0.3, slots=[], threshold=0.25)
    assert not tariff_allows(now=T0, current_price=None, slots=slots, threshold=0.25)
    assert tariff_allows(
        now=T0 + timedelta(hours=1), current_price=None, slots=slots, threshold=0.25
    )
    assert tariff_allows(now=T0, current_price=None, slots=[], threshold=0.25)
    assert tariff_allows(
        now=T0, current_price=9, slots=[], cheapest_hours=2, departure=time(7)
    )
    assert tariff_allows(now=T0, current_price=9, slots=[])


def test_time_of_use_text_round_trip() -> None:
    windows = parse_time_of_use("17-21:0.5, 23-6 = 0.8;\n 7:00-9:00@1")
    assert windows == (
        TimeOfUseWindow(
            peak_start_hour=17, peak_end_hour=21, peak_power_multiplier=0.5
        ),
        TimeOfUseWindow(peak_start_hour=23, peak_end_hour=6, peak_power_multiplier=0.8),
        TimeOfUseWindow(peak_start_hour=7, peak_end_hour=9, peak_power_multiplier=1.0),
    )
    assert parse_time_of_use(format_time_of_use(windows)) == windows
    assert parse_time_of_use("") == ()
    for bad in ("17:0.5", "17-17:0.5", "25-3:1", "a-b:c"):
        with pytest.raises(EngineConfigError):
            parse_time_of_use(bad)


@given(st.floats(0, 500), st.floats(0, 50))
def test_limit_for_minimums_holds_them(minimum: float, margin: float) -> None:
    from custom_components.smart_charge.engine.budgets import limit_for_minimums

    limit = limit_for_minimums(minimum, margin)
    assert limit * (1 - margin / 100) >= minimum
    assert limit <= minimum / (1 - margin / 100) + 0.01
