"""A panel's budget from its sensors' readings: `panel_budget` and its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, strategies as st
import pytest

from custom_components.smart_charge.engine import (
    BudgetReason,
    Strategy,
    TimeOfUseWindow,
)
from custom_components.smart_charge.engine.budgets import (
    BudgetReadings,
    BudgetResult,
    BudgetSources,
    SolarHysteresis,
    limit_for_minimums,
    panel_budget,
    panel_budget_reason,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOME = BudgetSources(rating_kw=11.0, safety_margin_pct=5.0, load_power=True)


def _solar() -> SolarHysteresis:
    return SolarHysteresis(1.4, timedelta(0), timedelta(0))


@pytest.mark.parametrize(
    ("sources", "readings", "expected"),
    [
        # No source: the rating.
        (
            BudgetSources(rating_kw=11.0),
            BudgetReadings(),
            BudgetResult(limit_kw=11.0, reason=BudgetReason.LIMIT),
        ),
        # Other load: subtracted by the engine, named as the reason.
        (
            HOME,
            BudgetReadings(load_kw=2.5),
            BudgetResult(limit_kw=11.0, reason=BudgetReason.LOAD, unmanaged_kw=2.5),
        ),
        # Export reads negative: no other load.
        (
            HOME,
            BudgetReadings(load_kw=-1.0),
            BudgetResult(limit_kw=11.0, reason=BudgetReason.LIMIT),
        ),
        # Load sensor unavailable: the whole rating is in use.
        (
            HOME,
            BudgetReadings(load_kw=None),
            BudgetResult(limit_kw=11.0, reason=BudgetReason.LOAD, unmanaged_kw=11.0),
        ),
        # Per-phase currents alone: their power at the site voltage.
        (
            BudgetSources(rating_kw=11.0, load_phases=3),
            BudgetReadings(load_phase_a=(8.0, 0.0, 2.0)),
            BudgetResult(
                limit_kw=11.0,
                reason=BudgetReason.LOAD,
                unmanaged_kw=2.3,
                unmanaged_phase_a=(8.0, 0.0, 2.0),
            ),
        ),
        # One phase sensor gone: every phase at its limit.
        (
            BudgetSources(rating_kw=11.0, phase_limit_a=16.0, load_phases=3),
            BudgetReadings(load_phase_a=(8.0, None, 2.0)),
            BudgetResult(
                limit_kw=11.0,
                reason=BudgetReason.LOAD,
                unmanaged_kw=11.0,
                unmanaged_phase_a=(16.0, 16.0, 16.0),
            ),
        ),
        # The price rule says no: 0 kW.
        (
            BudgetSources(rating_kw=11.0, tariff=True),
            BudgetReadings(tariff_allows=False),
            BudgetResult(limit_kw=0.0, reason=BudgetReason.TARIFF),
        ),
        # ... or the sessions' minimum, held.
        (
            BudgetSources(rating_kw=11.0, tariff=True, tariff_hold_minimum=True),
            BudgetReadings(tariff_allows=False, sessions_minimum_kw=4.14),
            BudgetResult(
                limit_kw=limit_for_minimums(4.14, 0.0),
                reason=BudgetReason.TARIFF,
                hold_minimum=True,
            ),
        ),
        # A price rule that allows charging changes nothing.
        (
            BudgetSources(rating_kw=11.0, tariff=True),
            BudgetReadings(tariff_allows=True),
            BudgetResult(limit_kw=11.0, reason=BudgetReason.LIMIT),
        ),
    ],
)
def test_panel_budget_table(
    sources: BudgetSources, readings: BudgetReadings, expected: BudgetResult
) -> None:
    assert panel_budget(sources, readings, solar=None, now=T0) == expected


@pytest.mark.parametrize(
    ("mode", "grid_kw", "expected_kw", "hold"),
    [
        # 3 kW exported while the cars draw 2 kW: 5 kW surplus, plus the other load
        # (1 kW) the engine subtracts again.
        ("solar", -3.0, 6.0, False),
        # Importing: no surplus, the cars stop...
        ("solar", 1.0, 0.0, False),
        # ... or keep their minimum (4.14 kW with 1 kW of other load seen before).
        ("min_solar", 1.0, limit_for_minimums(4.14 + 1.0, 0.0), True),
        # Grid meter unavailable: no surplus.
        ("solar", None, 0.0, False),
    ],
)
def test_panel_budget_solar(
    mode: str, grid_kw: float | None, expected_kw: float, hold: bool
) -> None:
    sources = BudgetSources(
        rating_kw=11.0, load_power=True, solar_mode=mode, solar_grid=True
    )
    readings = BudgetReadings(
        load_kw=1.0, grid_kw=grid_kw, cars_kw=2.0, sessions_minimum_kw=4.14
    )
    previous = BudgetResult(limit_kw=11.0, reason=BudgetReason.LOAD, unmanaged_kw=1.0)
    result = panel_budget(sources, readings, solar=_solar(), now=T0, previous=previous)
    assert result.limit_kw == pytest.approx(expected_kw)
    assert result.reason == BudgetReason.SOLAR
    assert result.hold_minimum is hold
    assert result.unmanaged_kw == 1.0


def test_panel_budget_without_grid_meter_ignores_solar() -> None:
    sources = BudgetSources(rating_kw=11.0, solar_mode="solar", solar_grid=False)
    result = panel_budget(sources, BudgetReadings(), solar=_solar(), now=T0)
    assert result == BudgetResult(limit_kw=11.0, reason=BudgetReason.LIMIT)


_maybe_kw = st.none() | st.floats(-20, 40)


@given(
    rating=st.floats(0, 50),
    load=_maybe_kw,
    phases=st.lists(st.none() | st.floats(-5, 80), max_size=3),
    grid=_maybe_kw,
    cars=st.floats(0, 30),
    minimum=st.floats(0, 30),
    allows=st.booleans(),
    mode=st.sampled_from(["off", "solar", "min_solar"]),
    hold=st.booleans(),
)
def test_panel_budget_stays_within_the_rating(
    rating: float,
    load: float | None,
    phases: list[float | None],
    grid: float | None,
    cars: float,
    minimum: float,
    allows: bool,
    mode: str,
    hold: bool,
) -> None:
    """Never above the rating nor below 0; 'limit' only when nothing else applies."""
    sources = BudgetSources(
        rating_kw=rating,
        phase_limit_a=16.0,
        load_power=True,
        load_phases=len(phases),
        solar_mode=mode,
        solar_grid=mode != "off",
        tariff=True,
        tariff_hold_minimum=hold,
    )
    readings = BudgetReadings(
        load_kw=load,
        load_phase_a=tuple(phases),
        grid_kw=grid,
        cars_kw=cars,
        sessions_minimum_kw=minimum,
        tariff_allows=allows,
    )
    solar = _solar() if mode != "off" else None
    result = panel_budget(sources, readings, solar=solar, now=T0)
    assert 0.0 <= result.limit_kw <= round(rating, 3)
    assert result.unmanaged_kw >= 0.0
    if load is None or None in phases:
        assert result.unmanaged_kw == round(rating, 3)
    if result.reason == BudgetReason.LIMIT:
        assert result.limit_kw == round(rating, 3)
        assert result.unmanaged_kw == 0.0


def test_panel_budget_reason_most_binding_first() -> None:
    peak = (
        TimeOfUseWindow(
            peak_start_hour=12, peak_end_hour=13, peak_power_multiplier=0.5
        ),
    )
    load = BudgetResult(limit_kw=11.0, reason=BudgetReason.LOAD, unmanaged_kw=2.0)

    def reason(
        override_kw: float | None,
        budget: BudgetResult | None,
        strategy: Strategy = Strategy.EQUAL_SHARE,
    ) -> str:
        return panel_budget_reason(
            override_kw=override_kw,
            budget=budget,
            strategy=strategy,
            windows=peak,
            now=T0,
            time_zone="UTC",
        )

    assert reason(5.0, None) == BudgetReason.OVERRIDE
    assert reason(5.0, load) == BudgetReason.OVERRIDE
    # An override above what the sources allow does not bind.
    assert reason(12.0, load) == BudgetReason.LOAD
    assert reason(None, None) == BudgetReason.LIMIT
    # A time-of-use window counts only for the time-of-use strategy.
    assert reason(None, None, Strategy.TIME_OF_USE) == BudgetReason.TIME_OF_USE
    assert reason(None, load, Strategy.TIME_OF_USE) == BudgetReason.LOAD
