"""Solar forecasts: the attribute parser, the surplus per slot, and plans on a solar day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.smart_charge.engine import (
    ChargingGoal,
    Panel,
    PlanMode,
    PlanReason,
    PlanRequest,
    PlanSlot,
    Session,
    SessionPlan,
    ShortfallReason,
    Site,
    plan_charging,
)
from custom_components.smart_charge.engine.plan_inputs import (
    household_load_kw,
    with_solar_surplus,
)
from custom_components.smart_charge.engine.solar_forecast import (
    SolarSlot,
    mean_solar_kw,
    mean_solar_kws,
    merge_solar_forecasts,
    parse_solar_forecast,
)

from .test_planner_properties import sites

T0 = datetime(2026, 6, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
HALF = timedelta(minutes=30)
QUARTER = timedelta(minutes=15)
TOL = 1e-6


def at(hours: float) -> datetime:
    return T0 + hours * HOUR


def as_tuples(slots: list[SolarSlot]) -> list[tuple[datetime, datetime, float]]:
    return [(s.start, s.end, pytest.approx(s.kw)) for s in slots]  # type: ignore[misc]


# ------------------------------------------------------------------ the parser


def test_solcast_detailed_forecast_is_kw_per_half_hour() -> None:
    attributes = {
        "detailedForecast": [
            {
                "period_start": at(10 + i / 2).isoformat(),
                "pv_estimate": kw,
                "pv_estimate10": kw / 2,
                "pv_estimate90": kw * 1.2,
            }
            for i, kw in enumerate([0.5, 3.25, 4.0])
        ],
        # The same forecast hourly: never added on top of the half hours.
        "detailedHourly": [
            {"period_start": at(10).isoformat(), "pv_estimate": 1.875},
            {"period_start": at(11).isoformat(), "pv_estimate": 4.0},
        ],
        "unit_of_measurement": "kWh",  # the state is the day's energy: not the items'
    }
    assert as_tuples(parse_solar_forecast(attributes)) == [
        (at(10), at(10.5), 0.5),
        (at(10.5), at(11), 3.25),
        (at(11), at(11.5), 4.0),  # the last is as long as the one before
    ]


def test_solcast_detailed_hourly_alone() -> None:
    attributes = {
        "detailedHourly": [
            {"period_start": "2026-06-01T12:00:00+02:00", "pv_estimate": 2.5},
            {"period_start": "2026-06-01T13:00:00+02:00", "pv_estimate": 0},
        ]
    }
    assert as_tuples(parse_solar_forecast(attributes)) == [
        (at(10), at(11), 2.5),
        (at(11), at(12), 0.0),
    ]


def test_open_meteo_watts_are_w_and_wh_period_is_wh() -> None:
    watts = {
        at(10).isoformat(): 1200,
        at(10.25).isoformat(): 2400.0,
        at(10.5).isoformat(): 0,
    }
    assert as_tuples(parse_solar_forecast({"watts": watts})) == [
        (at(10), at(10.25), 1.2),
        (at(10.25), at(10.5), 2.4),
        (at(10.5), at(10.75), 0.0),
    ]
    wh_period = {at(10).isoformat(): 1500, at(11).isoformat(): 3000}
    assert as_tuples(parse_solar_forecast({"wh_period": wh_period})) == [
        (at(10), at(11), 1.5),
        (at(11), at(12), 3.0),
    ]
    # Both present (Open-Meteo's energy sensors): the finer watts win.
    both = parse_solar_forecast({"watts": watts, "wh_period": wh_period})
    assert [s.end - s.start for s in both] == [QUARTER] * 3


def test_wh_period_of_a_quarter_hour_is_four_times_its_power() -> None:
    wh_period = {at(10).isoformat(): 500, at(10.25).isoformat(): 250}
    assert as_tuples(parse_solar_forecast({"wh_period": wh_period})) == [
        (at(10), at(10.25), 2.0),
        (at(10.25), at(10.5), 1.0),
    ]


@pytest.mark.parametrize(
    ("item", "entity_unit", "kw"),
    [
        ({"start": "2026-06-01T10:00:00+00:00", "watts": 2500}, None, 2.5),
        ({"start": "2026-06-01T10:00:00+00:00", "power_w": 2500}, None, 2.5),
        ({"datetime": "2026-06-01T10:00:00+00:00", "power_kw": 2.5}, None, 2.5),
        ({"start": "2026-06-01T10:00:00+00:00", "wh": 2500}, None, 2.5),
        ({"start": "2026-06-01T10:00:00+00:00", "energy_kwh": 2.5}, None, 2.5),
        ({"start": "2026-06-01T10:00:00+00:00", "value": 2500}, "W", 2.5),
        ({"start": "2026-06-01T10:00:00+00:00", "value": 2.5}, "kW", 2.5),
        ({"start": "2026-06-01T10:00:00+00:00", "power": 2.5, "unit": "kW"}, "W", 2.5),
        ({"start": "2026-06-01T10:00:00+00:00", "value": 2500}, "Wh", 2.5),
        ({"start": "2026-06-01T10:00:00+00:00", "value": 2.5}, "kWh", 2.5),
        # Small numbers are not taken for kW, nor big ones for W: the key says.
        ({"start": "2026-06-01T10:00:00+00:00", "watts": 3}, None, 0.003),
        ({"start": "2026-06-01T10:00:00+00:00", "power_kw": 3000}, None, 3000.0),
    ],
)
def test_generic_items_use_the_unit_of_their_key(
    item: dict[str, Any], entity_unit: str | None, kw: float
) -> None:
    attributes: dict[str, Any] = {"forecast": [item]}
    if entity_unit is not None:
        attributes["unit_of_measurement"] = entity_unit
    assert as_tuples(parse_solar_forecast(attributes)) == [(at(10), at(11), kw)]


def test_values_without_a_unit_are_not_guessed() -> None:
    attributes = {
        "forecast": [
            {"start": at(10).isoformat(), "value": 2500},
            {"start": at(11).isoformat(), "power": 2.5},
        ]
    }
    assert parse_solar_forecast(attributes) == []
    assert parse_solar_forecast({**attributes, "unit_of_measurement": "%"}) == []


def test_period_end_and_energy_over_a_given_period() -> None:
    attributes = {
        "data": [
            {"start": at(10).isoformat(), "end": at(12).isoformat(), "wh": 4000},
            {"start": at(12).isoformat(), "end": at(12.5).isoformat(), "wh": 1000},
        ]
    }
    assert as_tuples(parse_solar_forecast(attributes)) == [
        (at(10), at(12), 2.0),
        (at(12), at(12.5), 2.0),
    ]


def test_naive_times_take_the_default_zone_or_are_skipped() -> None:
    watts = {"2026-06-01 12:00:00": 1000, "2026-06-01 13:00:00": 2000}
    assert parse_solar_forecast({"watts": watts}) == []
    plus2 = timezone(timedelta(hours=2))
    assert as_tuples(parse_solar_forecast({"watts": watts}, default_tz=plus2)) == [
        (at(10), at(11), 1.0),
        (at(11), at(12), 2.0),
    ]


def test_junk_is_skipped_and_negative_power_is_none() -> None:
    attributes = {
        "detailedForecast": [
            "not a dict",
            {"period_start": "yesterday", "pv_estimate": 1.0},
            {"period_start": at(9).isoformat(), "pv_estimate": "n/a"},
            {"period_start": at(9).isoformat(), "pv_estimate": True},
            {"period_start": at(9).isoformat(), "pv_estimate": float("nan")},
            {"period_start": at(10).isoformat(), "pv_estimate": -0.2},
            {"period_start": at(11).isoformat(), "pv_estimate": 1.0},
        ]
    }
    assert as_tuples(parse_solar_forecast(attributes)) == [
        (at(10), at(11), 0.0),
        (at(11), at(12), 1.0),
    ]
    assert parse_solar_forecast({}) == []
    assert parse_solar_forecast({"watts": [1, 2, 3], "forecast": "sunny"}) == []


def test_merge_keeps_today_and_tomorrow_and_the_first_of_overlaps() -> None:
    today = [SolarSlot(start=at(10), end=at(11), kw=1.0)]
    tomorrow = [SolarSlot(start=at(34), end=at(35), kw=2.0)]
    again = [SolarSlot(start=at(10.5), end=at(11.5), kw=9.0)]
    merged = merge_solar_forecasts([tomorrow, today, again])
    assert [(s.start, s.kw) for s in merged] == [(at(10), 1.0), (at(34), 2.0)]


def test_mean_over_a_slot_counts_uncovered_time_as_no_sun() -> None:
    forecast = [
        SolarSlot(start=at(10), end=at(10.5), kw=2.0),
        SolarSlot(start=at(10.5), end=at(11), kw=4.0),
    ]
    assert mean_solar_kw(forecast, at(10), at(11)) == pytest.approx(3.0)
    assert mean_solar_kw(forecast, at(10.25), at(10.5)) == pytest.approx(2.0)
    assert mean_solar_kw(forecast, at(10.5), at(11.5)) == pytest.approx(2.0)
    assert mean_solar_kw(forecast, at(12), at(13)) == 0.0
    assert mean_solar_kw(forecast, at(11), at(11)) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 96), st.integers(1, 8), st.floats(0, 20)),
        max_size=30,
    ),
    st.sampled_from([QUARTER, HALF, HOUR]),
)
def test_means_by_bisection_match_the_slot_by_slot_mean(
    raw: list[tuple[int, int, float]], length: timedelta
) -> None:
    # Random, possibly overlapping forecast periods on a 15-minute grid.
    forecast = [
        SolarSlot(start=T0 + a * QUARTER, end=T0 + (a + n) * QUARTER, kw=kw)
        for a, n, kw in raw
    ]
    starts = [T0 + i * length for i in range(int(26 * HOUR / length))]
    means = mean_solar_kws(forecast, starts, length)
    expected = [mean_solar_kw(forecast, s, s + length) for s in starts]
    assert means == pytest.approx(expected, abs=TOL)
    # Slots that cover the whole forecast hold all its energy.
    total = sum(s.kw * (s.end - s.start) / HOUR for s in forecast)
    assert sum(means) * (length / HOUR) == pytest.approx(total, abs=1e-6)


# ------------------------------------------------------------------ the surplus


def test_surplus_is_pv_minus_the_household_load_clipped_at_zero() -> None:
    site = Site(
        panels=[
            Panel(id="main", limit_kw=25, unmanaged_load_kw=0.5),
            Panel(id="garage", limit_kw=11, parent_id="main", unmanaged_load_kw=0.5),
        ]
    )
    slots = [PlanSlot(start=at(h)) for h in range(9, 12)]  # load 1 kW (0.5 + 0.5)
    slots[2] = PlanSlot(start=at(11), load_kw={"garage": 2.5})  # a load forecast
    forecast = [
        SolarSlot(start=at(9), end=at(10), kw=0.75),
        SolarSlot(start=at(10), end=at(11), kw=3.0),
        SolarSlot(start=at(11), end=at(12), kw=5.0),
    ]
    assert household_load_kw(site, slots[0]) == pytest.approx(1.0)
    assert household_load_kw(site, slots[2]) == pytest.approx(3.0)
    out = with_solar_surplus(site, slots, 60, forecast)
    assert [s.solar_kw for s in out] == pytest.approx([0.0, 2.0, 2.0])
    assert out[2].load_kw == {"garage": 2.5}  # the rest of the slot is kept
    assert with_solar_surplus(site, slots, 60, []) == slots


def test_quarter_hour_slots_take_their_part_of_an_hourly_forecast() -> None:
    site = Site(panels=[Panel(id="main", limit_kw=25)])
    slots = [PlanSlot(start=at(10) + i * QUARTER) for i in range(6)]
    forecast = [SolarSlot(start=at(10), end=at(11), kw=4.0)]
    out = with_solar_surplus(site, slots, 15, forecast)
    assert [s.solar_kw for s in out] == pytest.approx([4.0] * 4 + [0.0, 0.0])


# ------------------------------------------------------------------ a solar day

# One single-phase car at 250 V (0.25 kW per A, 6-16 A) needs 6 kWh = 24 A·h. The
# forecast says 3 kW of PV from 10:00 to 14:00 and the house draws 1 kW: a surplus of
# 2 kW = 8 A for four hours (32 A·h). The grid costs 0.10 at night (00-06), 0.30 by day.
SITE = Site(panels=[Panel(id="main", limit_kw=11, unmanaged_load_kw=1.0)])
FORECAST = {
    "detailedForecast": [
        {"period_start": (at(10) + i * HALF).isoformat(), "pv_estimate": 3.0}
        for i in range(8)
    ]
}


def day_slots() -> list[PlanSlot]:
    slots = [PlanSlot(start=at(h), price=0.10 if h < 6 else 0.30) for h in range(24)]
    return with_solar_surplus(SITE, slots, 60, parse_solar_forecast(FORECAST))


def car(mode: PlanMode, energy_kwh: float = 6.0) -> PlanRequest:
    return PlanRequest(
        session=Session(
            transaction_id="S",
            phases=1,
            voltage_v=250,
            min_charge_rate_kw=1.5,
            max_hardware_power_kw=4.0,
        ),
        goal=ChargingGoal(mode=mode, energy_kwh=energy_kwh, departure=at(24)),
    )


def amps(
    mode: PlanMode, *, energy_kwh: float = 6.0, feed_in: float = 0.0
) -> SessionPlan:
    plan = plan_charging(
        SITE,
        [car(mode, energy_kwh)],
        day_slots(),
        slot_minutes=60,
        feed_in_price=feed_in,
    )
    return plan.sessions["S"]


def test_the_forecast_becomes_two_kw_of_surplus_from_ten_to_two() -> None:
    surplus = [s.solar_kw for s in day_slots()]
    assert surplus == pytest.approx([0.0] * 10 + [2.0] * 4 + [0.0] * 10)


@pytest.mark.parametrize(
    "mode",
    [
        PlanMode.SOLAR_ONLY,
        PlanMode.BY_DEPARTURE_SOLAR_FIRST,
        PlanMode.BY_DEPARTURE_CHEAPEST,
    ],
)
def test_free_solar_plans_the_car_in_the_sunny_hours(mode: PlanMode) -> None:
    plan = amps(mode)
    # 24 A·h at 8 A: 10:00, 11:00, 12:00 (ties go to the earliest), nothing at night.
    expected = [0.0] * 10 + [8.0, 8.0, 8.0] + [0.0] * 11
    assert [s.amps_per_phase for s in plan.slots] == expected
    assert plan.goal_met
    assert plan.energy_kwh == pytest.approx(6.0)
    assert plan.cost == pytest.approx(0.0)
    assert plan.next_start() == at(10)
    assert plan.finish == at(13)
    assert all(s.reason is PlanReason.SOLAR for s in plan.slots if s.amps_per_phase > 0)


def test_a_feed_in_price_above_the_night_price_moves_cheapest_to_the_night() -> None:
    # A solar kWh now costs the 0.20 it would earn; the night's grid kWh costs 0.10.
    cheapest = amps(PlanMode.BY_DEPARTURE_CHEAPEST, feed_in=0.20)
    assert [s.amps_per_phase for s in cheapest.slots] == [16.0, 8.0] + [0.0] * 22
    assert cheapest.cost == pytest.approx(6.0 * 0.10)
    # Solar first keeps to the sun (at 0.20 a kWh), by design of the mode.
    solar_first = amps(PlanMode.BY_DEPARTURE_SOLAR_FIRST, feed_in=0.20)
    assert [s.amps_per_phase for s in solar_first.slots][10:13] == [8.0] * 3
    assert solar_first.cost == pytest.approx(6.0 * 0.20)
    # Below the night price the sun is the cheapest again.
    cheaper_sun = amps(PlanMode.BY_DEPARTURE_CHEAPEST, feed_in=0.05)
    assert [s.amps_per_phase for s in cheaper_sun.slots][10:13] == [8.0] * 3
    assert cheaper_sun.cost == pytest.approx(6.0 * 0.05)


def test_solar_first_tops_up_from_the_cheapest_grid_hour() -> None:
    # 10 kWh: the 8 kWh of surplus, then 2 kWh (8 A) from the grid at 0.10 at 00:00.
    plan = amps(PlanMode.BY_DEPARTURE_SOLAR_FIRST, energy_kwh=10.0)
    expected = [8.0] + [0.0] * 9 + [8.0] * 4 + [0.0] * 10
    assert [s.amps_per_phase for s in plan.slots] == expected
    assert plan.goal_met
    assert plan.cost == pytest.approx(2.0 * 0.10)
    # A grid slot, not a solar one (the planner calls it needed for the departure:
    # the surplus it prefers ran out).
    assert plan.slots[0].reason is PlanReason.DEPARTURE
    assert plan.slots[10].reason is PlanReason.SOLAR


def test_solar_only_stops_at_the_surplus_and_says_so() -> None:
    plan = amps(PlanMode.SOLAR_ONLY, energy_kwh=10.0)
    expected = [0.0] * 10 + [8.0] * 4 + [0.0] * 10
    assert [s.amps_per_phase for s in plan.slots] == expected
    assert plan.energy_kwh == pytest.approx(8.0)
    assert not plan.goal_met
    assert plan.shortfall_kwh == pytest.approx(2.0)
    assert plan.shortfall_reason is ShortfallReason.SOLAR_ONLY


def test_solar_only_without_a_forecast_plans_nothing() -> None:
    slots = [PlanSlot(start=at(h), price=0.10) for h in range(24)]
    plan = plan_charging(SITE, [car(PlanMode.SOLAR_ONLY)], slots, slot_minutes=60)
    assert plan.sessions["S"].energy_kwh == 0.0
    assert plan.sessions["S"].next_start() is None


# ------------------------------------------------------------------ the property


@st.composite
def solar_cases(
    draw: st.DrawFn,
) -> tuple[Site, list[PlanRequest], list[PlanSlot], int]:
    site = draw(sites())
    ids = [p.id for p in site.panels]
    minutes = draw(st.sampled_from([15, 60]))
    step = timedelta(minutes=minutes)
    n_slots = draw(st.integers(1, 12))
    slots = [
        PlanSlot(
            start=T0 + t * step,
            price=draw(st.sampled_from([0.1, 0.3]) | st.floats(-1, 1)),
            load_kw=draw(st.dictionaries(st.sampled_from(ids), st.floats(0, 3))),
        )
        for t in range(n_slots)
    ]
    pv_step = draw(st.sampled_from([QUARTER, HALF, HOUR]))
    forecast = [
        SolarSlot(start=T0 + i * pv_step, end=T0 + (i + 1) * pv_step, kw=kw)
        for i, kw in enumerate(
            draw(st.lists(st.floats(0, 20), max_size=int(n_slots * step / pv_step) + 2))
        )
    ]
    slots = with_solar_surplus(site, slots, minutes, forecast)
    requests = []
    for i in range(draw(st.integers(1, 6))):
        mode = draw(st.sampled_from(PlanMode))
        energy = draw(st.none() | st.floats(0, 40))
        if energy is None and mode in (
            PlanMode.BY_DEPARTURE_CHEAPEST,
            PlanMode.BY_DEPARTURE_SOLAR_FIRST,
        ):
            energy = 10.0
        requests.append(
            PlanRequest(
                session=Session(
                    transaction_id=f"tx-{i}",
                    phases=draw(st.sampled_from([1, 3])),
                    max_hardware_power_kw=draw(st.sampled_from([3.68, 11.04, 22.08])),
                    panel_id=draw(st.sampled_from([None, *ids])),
                    sequence=i,
                ),
                goal=ChargingGoal(mode=mode, energy_kwh=energy),
            )
        )
    return site, requests, slots, minutes


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(solar_cases(), st.sampled_from([0.0, 0.2]))
def test_solar_only_never_plans_grid_energy(
    case: tuple[Site, list[PlanRequest], list[PlanSlot], int], feed_in: float
) -> None:
    site, requests, slots, minutes = case
    plan = plan_charging(
        site, requests, slots, slot_minutes=minutes, feed_in_price=feed_in
    )
    solar_only = [
        r.session.transaction_id for r in requests if r.goal.mode is PlanMode.SOLAR_ONLY
    ]
    for t, slot in enumerate(slots):
        taken = sum(plan.sessions[key].slots[t].power_kw for key in solar_only)
        # The surplus is the site's: under every panel, and so in all, the solar-only
        # cars together take at most what the forecast leaves after the house.
        assert taken <= slot.solar_kw + TOL
        for panel in site.panels:
            under = {p.id for p in site.panels if _below(site, p.id, panel.id)}
            share = sum(
                plan.sessions[r.session.transaction_id].slots[t].power_kw
                for r in requests
                if r.goal.mode is PlanMode.SOLAR_ONLY
                and (r.session.panel_id or site.root.id) in under
            )
            assert share <= slot.solar_kw + TOL
    for key in solar_only:
        session_plan = plan.sessions[key]
        assert all(
            s.reason in (PlanReason.SOLAR, PlanReason.IDLE) for s in session_plan.slots
        )


def _below(site: Site, panel_id: str, ancestor: str) -> bool:
    """Return whether panel_id is ancestor or lies below it."""
    parents = {p.id: p.parent_id for p in site.panels}
    current: str | None = panel_id
    while current is not None:
        if current == ancestor:
            return True
        current = parents[current]
    return False
