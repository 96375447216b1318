"""Table tests of the charging planner against hand-computed optima."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math
from typing import cast

import pytest

from custom_components.smart_charge.engine import (
    ChargingGoal,
    EngineConfigError,
    Panel,
    Phase,
    PlanMode,
    PlanReason,
    PlanRequest,
    PlanSlot,
    Session,
    ShortfallReason,
    Site,
    Strategy,
    TimeOfUseWindow,
    build_ocpp201_profile,
    plan_charging,
)
from custom_components.smart_charge.engine.allocate import make_profile
from custom_components.smart_charge.units import RateUnit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KW_PER_A = 0.69  # three-phase, 230 V
ONE_FUSE = Site(
    panels=[Panel(id="fuse", limit_kw=100, phase_limit_a=16, safety_margin_pct=0)]
)


def hour(h: float) -> datetime:
    return T0 + timedelta(hours=h)


def car(tx: str, seq: int = 0, **kwargs: object) -> Session:
    return Session(
        transaction_id=tx,
        max_hardware_power_kw=kwargs.pop("max_kw", 11.04),  # type: ignore[arg-type]
        sequence=seq,
        **kwargs,  # type: ignore[arg-type]
    )


def hourly(prices: list[float], **kwargs: object) -> list[PlanSlot]:
    return [
        PlanSlot(start=hour(h), price=p, **kwargs)  # type: ignore[arg-type]
        for h, p in enumerate(prices)
    ]


def amps(plan_slots: tuple[object, ...]) -> list[float]:
    return [s.amps_per_phase for s in plan_slots]  # type: ignore[attr-defined]


# Two cars on one 16 A fuse, hourly prices.
#   A: 5.52 kWh (8 A for an hour) by 03:00 -> its cheapest slot, 01:00 (10).
#   B: 22.08 kWh by 06:00 -> 03:00 at 16 A (5), the 8 A left at 01:00 (10), then 8 A at
#   05:00 (15). Every cheaper kWh is used: optimum 11.04*(5+10) + 5.52*15 = 248.4.
PRICES = [30.0, 10.0, 20.0, 5.0, 40.0, 15.0]


def test_two_cars_one_fuse_hourly_prices() -> None:
    requests = [
        PlanRequest(
            session=car("A", 1),
            goal=ChargingGoal(energy_kwh=5.52, departure=hour(3)),
        ),
        PlanRequest(
            session=car("B", 2),
            goal=ChargingGoal(energy_kwh=22.08, departure=hour(6)),
        ),
    ]
    plan = plan_charging(ONE_FUSE, requests, hourly(PRICES), slot_minutes=60)
    a, b = plan.sessions["A"], plan.sessions["B"]
    assert amps(a.slots) == [0, 8, 0, 0, 0, 0]
    assert amps(b.slots) == [0, 8, 0, 16, 0, 8]
    assert a.goal_met and b.goal_met
    assert a.energy_kwh == pytest.approx(5.52)
    assert b.energy_kwh == pytest.approx(22.08)
    assert a.cost == pytest.approx(55.2)
    assert plan.cost == pytest.approx(248.4)
    assert b.slots[5].reason is PlanReason.DEPARTURE  # cheaper 01:00 was full
    assert b.slots[3].reason is PlanReason.CHEAPEST
    assert plan.panels["fuse"].phase_a[1] == pytest.approx((16.0, 16.0, 16.0))
    assert plan.panels["fuse"].load_kw[3] == pytest.approx(11.04)
    assert a.finish == hour(2)
    assert b.next_start() == hour(1)
    # A's schedule: 0 A, 8 A, 0 A until its departure, absolute times.
    periods = a.periods()
    assert [(p.start, p.end, p.amps_per_phase) for p in periods] == [
        (hour(0), hour(1), 0.0),
        (hour(1), hour(2), 8.0),
        (hour(2), hour(3), 0.0),
    ]


def test_order_of_requests_does_not_matter() -> None:
    requests = [
        PlanRequest(
            session=car("B", 2),
            goal=ChargingGoal(energy_kwh=22.08, departure=hour(6)),
        ),
        PlanRequest(
            session=car("A", 1),
            goal=ChargingGoal(energy_kwh=5.52, departure=hour(3)),
        ),
    ]
    plan = plan_charging(ONE_FUSE, requests, hourly(PRICES), slot_minutes=60)
    assert plan.cost == pytest.approx(248.4)
    assert amps(plan.sessions["A"].slots) == [0, 8, 0, 0, 0, 0]


# A solar day, grid price 30, feed-in 8, surplus 0, 2, 7, 10, 10, 7, 2, 0 A (x 0.69 kW).
# One car (6-16 A) needs 27.6 kWh = the 34 A·h of surplus at 7 A or more (23.46 kWh)
# plus 4.14 kWh. Cheapest for that rest: one slot with 2 A of surplus at the 6 A minimum
# (1.38 kWh solar + 2.76 kWh grid = 93.84) rather than 6 A on top of a solar slot
# (4.14 kWh grid = 124.2). Optimum: 23.46 * 8 + 93.84 = 281.52.
SOLAR_A = [0, 2, 7, 10, 10, 7, 2, 0]


def solar_day(price: float = 30.0) -> list[PlanSlot]:
    return [
        PlanSlot(start=hour(h), price=price, solar_kw=a * KW_PER_A)
        for h, a in enumerate(SOLAR_A)
    ]


def test_solar_day_cheapest() -> None:
    request = PlanRequest(
        session=car("S"), goal=ChargingGoal(energy_kwh=27.6, departure=hour(8))
    )
    plan = plan_charging(
        ONE_FUSE, [request], solar_day(), slot_minutes=60, feed_in_price=8.0
    )
    s = plan.sessions["S"]
    assert amps(s.slots) == [0, 6, 7, 10, 10, 7, 0, 0]
    assert s.goal_met
    assert s.cost == pytest.approx(281.52)
    assert s.slots[3].reason is PlanReason.SOLAR
    assert s.periods(max_periods=24)[0].amps_per_phase == 0


def test_solar_first_prefers_surplus_over_a_cheaper_night() -> None:
    # Night (00:00-02:00) at 5 is cheaper than the feed-in of 8 (and the day at 30).
    slots = [
        PlanSlot(start=hour(h), price=5.0 if h < 2 else 30.0, solar_kw=a * KW_PER_A)
        for h, a in enumerate(SOLAR_A)
    ]
    goal = {"energy_kwh": 13.8, "departure": hour(8)}  # 20 A·h
    cheapest = plan_charging(
        ONE_FUSE,
        [PlanRequest(session=car("S"), goal=ChargingGoal(**goal))],  # type: ignore[arg-type]
        slots,
        slot_minutes=60,
        feed_in_price=8.0,
    ).sessions["S"]
    solar = plan_charging(
        ONE_FUSE,
        [
            PlanRequest(
                session=car("S"),
                goal=ChargingGoal(mode=PlanMode.BY_DEPARTURE_SOLAR_FIRST, **goal),  # type: ignore[arg-type]
            )
        ],
        slots,
        slot_minutes=60,
        feed_in_price=8.0,
    ).sessions["S"]
    # Cheapest: 16 A then 4 A -> below the minimum: 14 A + 6 A in the two night hours.
    assert amps(cheapest.slots) == [14, 6, 0, 0, 0, 0, 0, 0]
    assert cheapest.cost == pytest.approx(13.8 * 5)
    # Solar first: 20 A·h all from the sun, never above the surplus, nothing at night.
    assert sum(amps(solar.slots)) == pytest.approx(20)
    assert all(a <= s for a, s in zip(amps(solar.slots), SOLAR_A, strict=True))
    assert solar.cost == pytest.approx(13.8 * 8)
    assert all(
        s.reason is PlanReason.SOLAR for s in solar.slots if s.amps_per_phase > 0
    )


def test_solar_only_reports_what_the_sun_lacks() -> None:
    request = PlanRequest(
        session=car("S"),
        goal=ChargingGoal(mode=PlanMode.SOLAR_ONLY, energy_kwh=30.0),
    )
    plan = plan_charging(ONE_FUSE, [request], solar_day(), slot_minutes=60)
    s = plan.sessions["S"]
    # 2 A of surplus is below the 6 A minimum: those slots stay idle.
    assert amps(s.slots) == [0, 0, 7, 10, 10, 7, 0, 0]
    assert s.energy_kwh == pytest.approx(23.46)
    assert not s.goal_met
    assert s.shortfall_kwh == pytest.approx(30 - 23.46)
    assert s.shortfall_reason is ShortfallReason.SOLAR_ONLY
    assert s.cost == pytest.approx(0.0)


def test_goal_that_cannot_be_met_gets_as_much_as_possible() -> None:
    # 50 kWh by 03:00 on a 16 A car: at most 3 h * 11.04 kW = 33.12 kWh.
    request = PlanRequest(
        session=car("X"), goal=ChargingGoal(energy_kwh=50.0, departure=hour(3))
    )
    plan = plan_charging(ONE_FUSE, [request], hourly(PRICES), slot_minutes=60)
    x = plan.sessions["X"]
    assert amps(x.slots) == [16, 16, 16, 0, 0, 0]
    assert x.energy_kwh == pytest.approx(33.12)
    assert not x.goal_met
    assert x.shortfall_kwh == pytest.approx(50 - 33.12)
    assert x.shortfall_reason is ShortfallReason.NO_ROOM


def test_two_cars_short_of_power_the_earlier_departure_first() -> None:
    # 16 A fuse for 2 h (22.08 kWh); A needs 16.56 by 02:00, B 16.56 by 02:00 too, but A
    # has priority: A is served, B gets what is left and reports the rest.
    requests = [
        PlanRequest(
            session=car("B", 2),
            goal=ChargingGoal(energy_kwh=16.56, departure=hour(2)),
        ),
        PlanRequest(
            session=car("A", 1, priority=2),
            goal=ChargingGoal(energy_kwh=16.56, departure=hour(2)),
        ),
    ]
    plan = plan_charging(ONE_FUSE, requests, hourly([10, 20]), slot_minutes=60)
    a, b = plan.sessions["A"], plan.sessions["B"]
    assert a.goal_met
    assert amps(a.slots) == [16, 8]
    assert amps(b.slots) == [0, 8]
    assert b.shortfall_kwh == pytest.approx(16.56 - 5.52)


def test_as_fast_as_possible_ignores_prices() -> None:
    request = PlanRequest(
        session=car("F"),
        goal=ChargingGoal(mode=PlanMode.AS_FAST_AS_POSSIBLE, energy_kwh=13.8),
    )
    plan = plan_charging(ONE_FUSE, [request], hourly(PRICES), slot_minutes=60)
    f = plan.sessions["F"]
    # 20 A·h: 16 A, then the 4 A rest is below the minimum: 6 A, and 2 A back from 00:00.
    assert amps(f.slots) == [14, 6, 0, 0, 0, 0]
    assert f.goal_met
    assert f.slots[0].reason is PlanReason.AS_FAST_AS_POSSIBLE


def test_minimum_last_piece_is_met_exactly() -> None:
    # 13.8 kWh = 20 A·h: 16 A at 03:00 (5), the 4 A rest is below the 6 A minimum, so it
    # is 6 A at 01:00 (10) and 2 A are taken back from 03:00: 14 A + 6 A.
    request = PlanRequest(
        session=car("M"), goal=ChargingGoal(energy_kwh=13.8, departure=hour(6))
    )
    plan = plan_charging(ONE_FUSE, [request], hourly(PRICES), slot_minutes=60)
    m = plan.sessions["M"]
    assert amps(m.slots) == [0, 6, 0, 14, 0, 0]
    assert m.energy_kwh == pytest.approx(13.8)
    assert m.cost == pytest.approx(6 * KW_PER_A * 10 + 14 * KW_PER_A * 5)


def test_single_phase_cars_on_different_phases_each_get_the_phase() -> None:
    site = Site(
        panels=[Panel(id="fuse", limit_kw=100, phase_limit_a=16, safety_margin_pct=0)]
    )
    requests = [
        PlanRequest(
            session=car(f"P{p}", p, phases=1, grid_phase=phase, max_kw=3.68),
            goal=ChargingGoal(energy_kwh=3.68, departure=hour(2)),
        )
        for p, phase in enumerate((Phase.L1, Phase.L2, Phase.L3))
    ]
    plan = plan_charging(site, requests, hourly([1.0, 9.0]), slot_minutes=60)
    for p in range(3):
        assert amps(plan.sessions[f"P{p}"].slots) == [16, 0]
    assert plan.panels["fuse"].phase_a[0] == pytest.approx((16.0, 16.0, 16.0))


def test_household_forecast_margin_and_time_of_use() -> None:
    # 22 kW panel, 10 % margin -> 19.8 kW; 00:00 has 8.76 kW of household load (11.04 kW
    # left), 01:00 a time-of-use factor of 0.5 (9.9 kW), and a factor 1.5 never lifts it.
    site = Site(
        panels=[
            Panel(
                id="main",
                limit_kw=22,
                safety_margin_pct=10,
                strategy=Strategy.TIME_OF_USE,
                time_of_use_windows=(
                    TimeOfUseWindow(
                        peak_start_hour=2, peak_end_hour=3, peak_power_multiplier=1.5
                    ),
                ),
            )
        ]
    )
    slots = [
        PlanSlot(start=hour(0), price=1, load_kw={"main": 8.76}),
        PlanSlot(start=hour(1), price=1, multiplier=0.5),
        PlanSlot(start=hour(2), price=1),
    ]
    requests = [
        PlanRequest(
            session=car(f"C{i}", i, max_kw=22.08),
            goal=ChargingGoal(mode=PlanMode.AS_FAST_AS_POSSIBLE),
        )
        for i in range(2)
    ]
    plan = plan_charging(site, requests, slots, slot_minutes=60)
    main = plan.panels["main"]
    assert main.budget_kw == pytest.approx((11.04, 9.9, 19.8))
    for t, budget in enumerate(main.budget_kw):
        assert main.load_kw[t] <= budget + 1e-9
    assert main.load_kw[0] == pytest.approx(11.04)


def test_departure_inside_a_slot_and_now_inside_a_slot() -> None:
    request = PlanRequest(
        session=car("D"),
        goal=ChargingGoal(mode=PlanMode.AS_FAST_AS_POSSIBLE, departure=hour(1.5)),
    )
    plan = plan_charging(
        ONE_FUSE, [request], hourly([1, 1, 1]), slot_minutes=60, now=hour(0.5)
    )
    d = plan.sessions["D"]
    assert d.energy_kwh == pytest.approx(11.04)  # 30 min + 30 min at 16 A
    assert d.slots[0].start == hour(0.5)
    assert d.slots[1].end == hour(1.5)
    assert d.slots[2].energy_kwh == 0
    periods = d.periods()
    assert [(p.start, p.end) for p in periods] == [(hour(0.5), hour(1.5))]


def test_soc_goal() -> None:
    goal = ChargingGoal(target_soc_pct=80, current_soc_pct=50, battery_kwh=46)
    assert goal.needed_kwh() == pytest.approx(13.8)
    plan = plan_charging(
        ONE_FUSE,
        [PlanRequest(session=car("Q"), goal=goal)],
        hourly(PRICES),
        slot_minutes=60,
    )
    assert plan.sessions["Q"].goal_met


def test_max_periods_merges_the_least_costly_difference() -> None:
    request = PlanRequest(
        session=car("B"), goal=ChargingGoal(energy_kwh=22.08, departure=hour(6))
    )
    slots = hourly([1, 1, 9, 9, 2, 9])
    plan = plan_charging(
        ONE_FUSE,
        [
            PlanRequest(
                session=car("A", 1),
                goal=ChargingGoal(energy_kwh=1.38 * 3, departure=hour(1)),
            ),
            request,
        ],
        slots,
        slot_minutes=60,
    )
    b = plan.sessions["B"]
    assert amps(b.slots) == [10, 16, 0, 0, 6, 0]
    full = b.periods()
    assert [p.amps_per_phase for p in full] == [10, 16, 0, 6, 0]
    # Four periods: 10 -> 16, 0 -> 6 and 6 -> 0 each lose 6 A·h; the earliest goes
    # (01:00 gets 10 A: the lower current, never more than planned).
    four = b.periods(max_periods=4)
    assert [p.amps_per_phase for p in four] == [10, 0, 6, 0]
    two = b.periods(max_periods=2)
    assert [p.amps_per_phase for p in two] == [10, 0]
    assert two[0].end == hour(2)
    assert b.periods(max_periods=1)[0].amps_per_phase == 0
    with pytest.raises(EngineConfigError):
        b.periods(max_periods=0)


def test_unmanaged_session_counts_as_load() -> None:
    vip = Session(
        transaction_id="vip",
        max_hardware_power_kw=11.04,
        managed=False,
        measured_power_kw=5.52,
    )
    request = PlanRequest(
        session=car("C"), goal=ChargingGoal(mode=PlanMode.AS_FAST_AS_POSSIBLE)
    )
    plan = plan_charging(
        ONE_FUSE,
        [
            PlanRequest(
                session=vip, goal=ChargingGoal(mode=PlanMode.AS_FAST_AS_POSSIBLE)
            ),
            request,
        ],
        hourly([1]),
        slot_minutes=60,
    )
    assert "vip" not in plan.sessions
    assert amps(plan.sessions["C"].slots) == [8]


def test_invalid_input_is_refused() -> None:
    good = PlanRequest(session=car("A"), goal=ChargingGoal(energy_kwh=1))
    with pytest.raises(EngineConfigError):
        plan_charging(ONE_FUSE, [good], hourly([1]), slot_minutes=30)
    with pytest.raises(EngineConfigError):
        plan_charging(ONE_FUSE, [good], [], slot_minutes=60)
    with pytest.raises(EngineConfigError):
        plan_charging(
            ONE_FUSE,
            [good],
            [PlanSlot(start=hour(1)), PlanSlot(start=hour(0))],
            slot_minutes=60,
        )
    with pytest.raises(EngineConfigError):
        plan_charging(ONE_FUSE, [good, good], hourly([1]), slot_minutes=60)
    with pytest.raises(EngineConfigError):
        ChargingGoal(mode=PlanMode.BY_DEPARTURE_CHEAPEST)
    with pytest.raises(EngineConfigError):
        ChargingGoal(target_soc_pct=80)
    with pytest.raises(EngineConfigError):
        ChargingGoal(energy_kwh=1, departure=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(EngineConfigError):
        PlanSlot(start=hour(0), price=math.nan)
    with pytest.raises(EngineConfigError):
        plan_charging(
            ONE_FUSE,
            [
                PlanRequest(
                    session=car("A", panel_id="nope"), goal=ChargingGoal(energy_kwh=1)
                )
            ],
            hourly([1]),
            slot_minutes=60,
        )


def test_repair_frees_the_only_slot_a_later_car_can_use() -> None:
    # A (departs 02:00, on the main fuse) takes 00:00, the cheapest; B (departs 03:00)
    # sits under a sub-panel that is off (time-of-use factor 0) after 00:00, so 00:00 is
    # its only slot. The repair moves A to 01:00 and gives 00:00 to B: both goals met.
    site = Site(
        panels=[
            Panel(id="main", limit_kw=100, phase_limit_a=16, safety_margin_pct=0),
            Panel(id="sub", limit_kw=100, safety_margin_pct=0, parent_id="main"),
        ]
    )
    slots = [
        PlanSlot(start=hour(0), price=10),
        PlanSlot(start=hour(1), price=20, multiplier={"sub": 0.0}),
        PlanSlot(start=hour(2), price=30, multiplier={"sub": 0.0}),
    ]
    requests = [
        PlanRequest(
            session=car("A", 1),
            goal=ChargingGoal(energy_kwh=11.04, departure=hour(2)),
        ),
        PlanRequest(
            session=car("B", 2, panel_id="sub"),
            goal=ChargingGoal(energy_kwh=11.04, departure=hour(3)),
        ),
    ]
    plan = plan_charging(site, requests, slots, slot_minutes=60)
    a, b = plan.sessions["A"], plan.sessions["B"]
    assert amps(b.slots) == [16, 0, 0]
    assert amps(a.slots) == [0, 16, 0]
    assert a.goal_met and b.goal_met
    assert plan.cost == pytest.approx(11.04 * 30)


def test_exchange_reaches_the_optimum_with_car_maxima_below_the_fuse() -> None:
    # 16 A fuse, two 10 A cars (minimum 1 A), prices 1, 2, 3. A: 10 A·h by 02:00, B:
    # 20 A·h by 03:00. Greedy: A 10 A at 00:00, B 6 + 10 + 4 -> 48 A·h-price units. The
    # optimum 44: B 10 + 10, A 6 + 4 (A leaves B the cheap hour it cannot fill alone).
    requests = [
        PlanRequest(
            session=car(tx, seq),
            goal=ChargingGoal(energy_kwh=ah * KW_PER_A, departure=hour(dep)),
            min_current_a=1,
            max_current_a=10,
        )
        for tx, seq, ah, dep in (("A", 1, 10, 2), ("B", 2, 20, 3))
    ]
    plan = plan_charging(ONE_FUSE, requests, hourly([1, 2, 3]), slot_minutes=60)
    assert amps(plan.sessions["A"].slots) == [6, 4, 0]
    assert amps(plan.sessions["B"].slots) == [10, 10, 0]
    assert plan.cost == pytest.approx(44 * KW_PER_A)


def test_schedule_feeds_the_ocpp_profile_builder() -> None:
    request = PlanRequest(
        session=car("7", connector_id=1),
        goal=ChargingGoal(energy_kwh=5.52, departure=hour(3)),
    )
    plan = plan_charging(ONE_FUSE, [request], hourly(PRICES), slot_minutes=60)
    sp = plan.sessions["7"]
    start, periods = sp.schedule()
    assert start == hour(0)
    assert periods == [(0, 0.0), (3600, 8.0), (7200, 0.0)]
    assert sp.schedule(rate_unit=RateUnit.WATTS)[1][1] == (3600, 5520.0)
    body = build_ocpp201_profile(
        make_profile(request.session, 0.0, paused=True),
        start_schedule=start,
        periods=periods,
    )
    schedule = body["chargingSchedule"][0]
    assert schedule["startSchedule"].startswith("2026-01-01T00:00:00")
    assert [p["limit"] for p in schedule["chargingSchedulePeriod"]] == [0.0, 8.0, 0.0]
    with pytest.raises(EngineConfigError):
        sp.schedule(rate_unit=cast("RateUnit", "kW"))  # not a unit
