"""V2X discharge setpoints (`engine.discharge`): table tests and hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.smart_charge.engine import (
    EngineConfigError,
    Panel,
    Site,
    V2XSession,
    allocate_discharge,
    discharge_wanted,
    in_most_expensive_hours,
)

TOL = 1e-6


def car(
    key: str,
    panel: str = "main",
    *,
    soc: float | None = 80.0,
    min_soc: float = 30.0,
    max_kw: float = 11.0,
    min_kw: float = 0.0,
    phases: int = 3,
) -> V2XSession:
    return V2XSession(
        key=key,
        panel_id=panel,
        soc_pct=soc,
        min_soc_pct=min_soc,
        max_discharge_kw=max_kw,
        min_discharge_kw=min_kw,
        phases=phases,
    )


def house(
    load_kw: float, *, export_kw: float | None = None, limit: float = 25.0
) -> Site:
    return Site(
        panels=[
            Panel(
                id="main",
                limit_kw=limit,
                unmanaged_load_kw=load_kw,
                export_limit_kw=export_kw,
            )
        ]
    )


# ----------------------------------------------------------------- table tests


def test_covers_the_house_load_without_export() -> None:
    result = allocate_discharge(house(3.2), [car("A")], active=True)
    assert result == {"A": 3.2}


def test_exports_up_to_the_export_limit() -> None:
    result = allocate_discharge(house(3.0, export_kw=4.0), [car("A")], active=True)
    assert result == {"A": 7.0}


def test_nothing_while_the_price_rule_is_off() -> None:
    assert allocate_discharge(house(3.0), [car("A")], active=False) == {"A": 0.0}


@pytest.mark.parametrize(
    ("soc", "expected"),
    [(30.0, 0.0), (29.0, 0.0), (None, 0.0), (30.5, 3.0)],
)
def test_never_below_the_minimum_state_of_charge(
    soc: float | None, expected: float
) -> None:
    result = allocate_discharge(house(3.0), [car("A", soc=soc)], active=True)
    assert result == {"A": expected}


def test_zero_or_at_least_the_minimum() -> None:
    # 3 kW wanted, two cars that cannot go below 2 kW each: one discharges 3 kW.
    sessions = [car("A", soc=60, min_kw=2.0), car("B", soc=90, min_kw=2.0)]
    result = allocate_discharge(house(3.0), sessions, active=True)
    assert result == {"A": 0.0, "B": 3.0}  # the fuller car first


def test_minimum_above_what_is_wanted_gives_nothing() -> None:
    result = allocate_discharge(house(1.0), [car("A", min_kw=1.4)], active=True)
    assert result == {"A": 0.0}


def test_equal_shares_up_to_each_maximum() -> None:
    sessions = [car("A", max_kw=1.0), car("B"), car("C")]
    result = allocate_discharge(house(9.0), sessions, active=True)
    assert result == {"A": 1.0, "B": 4.0, "C": 4.0}


def test_sub_panel_rating_holds_in_reverse_without_counting_its_load() -> None:
    site = Site(
        panels=[
            Panel(id="main", limit_kw=40.0, export_limit_kw=10.0),
            Panel(
                id="garage",
                limit_kw=5.0,
                safety_margin_pct=0.0,
                parent_id="main",
                unmanaged_load_kw=2.0,
            ),
        ]
    )
    result = allocate_discharge(site, [car("A", "garage")], active=True)
    assert result == {"A": 5.0}  # its 5 kW breaker, though 12 kW could go out


def test_phase_limit_in_reverse() -> None:
    site = Site(
        panels=[
            Panel(
                id="main",
                limit_kw=40.0,
                phase_limit_a=10.0,
                safety_margin_pct=0.0,
                export_limit_kw=20.0,
            )
        ]
    )
    result = allocate_discharge(site, [car("A")], active=True)
    assert result == {"A": 6.9}  # 10 A x 3 x 230 V


def test_target_caps_the_total() -> None:
    result = allocate_discharge(
        house(3.0, export_kw=5.0), [car("A")], active=True, target_kw=2.5
    )
    assert result == {"A": 2.5}


def test_unknown_panel_gets_nothing() -> None:
    assert allocate_discharge(house(3.0), [car("A", "nowhere")], active=True) == {
        "A": 0.0
    }


def test_rejects_bad_sessions() -> None:
    with pytest.raises(EngineConfigError):
        car("A", max_kw=-1.0)
    with pytest.raises(EngineConfigError):
        car("A", min_soc=120.0)
    with pytest.raises(EngineConfigError):
        Panel(id="main", limit_kw=10.0, export_limit_kw=-2.0)


def test_price_rules() -> None:
    assert discharge_wanted(0.40, 0.35)
    assert discharge_wanted(0.35, 0.35)
    assert not discharge_wanted(0.30, 0.35)
    assert not discharge_wanted(None, 0.35)
    assert not discharge_wanted(0.40, None)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    prices = {start + timedelta(hours=h): price for h, price in enumerate([1, 5, 3, 5])}
    hour = timedelta(hours=1)
    inside = [in_most_expensive_hours(prices, 2, start + h * hour) for h in range(4)]
    assert inside == [False, True, False, True]
    assert not in_most_expensive_hours(prices, 2, start + 5 * hour)  # after the data
    assert not in_most_expensive_hours(prices, 2, start - hour)
    assert not in_most_expensive_hours(prices, 0, start + hour)


# ------------------------------------------------------------------ properties


@st.composite
def scenes(draw: st.DrawFn) -> tuple[Site, list[V2XSession], float | None]:
    count = draw(st.integers(1, 5))
    panels: list[Panel] = []
    for k in range(count):
        parent = None if k == 0 else f"P{draw(st.integers(0, k - 1))}"
        panels.append(
            Panel(
                id=f"P{k}",
                limit_kw=draw(st.sampled_from([0.0, 4.0, 11.0]) | st.floats(0, 50)),
                phase_limit_a=draw(st.none() | st.floats(0, 63)),
                safety_margin_pct=draw(st.sampled_from([0.0, 5.0, 10.0])),
                unmanaged_load_kw=draw(st.sampled_from([0.0, 1.5]) | st.floats(0, 8)),
                export_limit_kw=draw(st.none() | st.floats(0, 10)),
                parent_id=parent,
            )
        )
    site = Site(panels=panels)
    sessions = [
        V2XSession(
            key=f"S{i}",
            panel_id=draw(st.sampled_from([p.id for p in panels])),
            soc_pct=draw(st.none() | st.floats(0, 100)),
            min_soc_pct=draw(st.floats(0, 100)),
            max_discharge_kw=draw(st.floats(0, 22)),
            min_discharge_kw=draw(st.sampled_from([0.0, 1.4, 4.14]) | st.floats(0, 5)),
            phases=draw(st.sampled_from([1, 3])),
        )
        for i in range(draw(st.integers(0, 8)))
    ]
    target = draw(st.none() | st.floats(0, 30))
    return site, sessions, target


def _below(site: Site, panel_id: str, session: V2XSession) -> bool:
    return site.index[panel_id] in site.ancestors[site.index[session.panel_id]]


@settings(max_examples=300, deadline=None)
@given(scenes())
def test_every_rule_holds(scene: tuple[Site, list[V2XSession], float | None]) -> None:
    site, sessions, target = scene
    result = allocate_discharge(site, sessions, active=True, target_kw=target)
    assert set(result) == {s.key for s in sessions}
    total_load = sum(p.unmanaged_load_kw for p in site.panels)
    root = site.panels[site.order[0]]
    # 1. The grid export limit (None: none at all).
    root_export = root.export_limit_kw or 0.0
    assert sum(result.values()) - total_load <= root_export + TOL
    if target is not None:
        assert sum(result.values()) <= target + TOL
    for panel in site.panels:
        under = [s for s in sessions if _below(site, panel.id, s)]
        flow = sum(result[s.key] for s in under)
        factor = 1 - panel.safety_margin_pct / 100
        # 3. Each breaker's rating in reverse, in kW and per phase.
        assert flow <= panel.limit_kw * factor + TOL
        if panel.phase_limit_a is not None:
            amps = sum(result[s.key] * s.amps_per_kw for s in under)
            assert amps <= panel.phase_limit_a * factor + TOL
        # 2. A panel's own export limit beyond the load it feeds.
        if panel.export_limit_kw is not None:
            load = sum(
                p.unmanaged_load_kw
                for p in site.panels
                if site.index[panel.id] in site.ancestors[site.index[p.id]]
            )
            assert flow <= panel.export_limit_kw + load + TOL
    for session in sessions:
        kw = result[session.key]
        # 4. Never below the minimum SoC, never above the maximum, 0 or >= minimum.
        if session.soc_pct is None or session.soc_pct <= session.min_soc_pct:
            assert kw == 0.0
        assert kw <= session.max_discharge_kw + TOL
        assert kw == 0.0 or kw >= session.min_discharge_kw - TOL
        assert kw * 1000 == pytest.approx(round(kw * 1000), abs=1e-6)  # whole watts


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_inactive_or_repeated(
    scene: tuple[Site, list[V2XSession], float | None],
) -> None:
    site, sessions, target = scene
    assert set(allocate_discharge(site, sessions, active=False).values()) <= {0.0}
    first = allocate_discharge(site, sessions, active=True, target_kw=target)
    again = allocate_discharge(site, sessions, active=True, target_kw=target)
    assert first == again  # deterministic


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_a_single_car_takes_what_it_may(
    scene: tuple[Site, list[V2XSession], float | None],
) -> None:
    """With one eligible car and no minimum, it gets the tightest bound (work-conserving)."""
    site, sessions, target = scene
    if not sessions:
        return
    one = sessions[0]
    solo = V2XSession(
        key=one.key,
        panel_id=one.panel_id,
        soc_pct=90.0,
        min_soc_pct=10.0,
        max_discharge_kw=one.max_discharge_kw,
        phases=one.phases,
    )
    result = allocate_discharge(site, [solo], active=True, target_kw=target)
    total_load = sum(p.unmanaged_load_kw for p in site.panels)
    bounds = [solo.max_discharge_kw]
    root = site.panels[site.order[0]]
    bounds.append((root.export_limit_kw or 0.0) + total_load)
    if target is not None:
        bounds.append(target)
    for panel in site.panels:
        if not _below(site, panel.id, solo):
            continue
        factor = 1 - panel.safety_margin_pct / 100
        bounds.append(panel.limit_kw * factor)
        if panel.phase_limit_a is not None:
            bounds.append(panel.phase_limit_a * factor / solo.amps_per_kw)
        if panel.export_limit_kw is not None:
            load = sum(
                p.unmanaged_load_kw
                for p in site.panels
                if site.index[panel.id] in site.ancestors[site.index[p.id]]
            )
            bounds.append(panel.export_limit_kw + load)
    assert result[solo.key] == pytest.approx(max(0.0, min(bounds)), abs=1.01e-3)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0, 15),
    st.floats(0, 5),
    st.lists(st.tuples(st.floats(0.5, 5), st.floats(1, 11)), min_size=1, max_size=6),
)
def test_crowded_minimums(
    load_kw: float, export_kw: float, cars: list[tuple[float, float]]
) -> None:
    """Many cars with minimums under one tight allowance: each 0 or >= its minimum."""
    site = house(load_kw, export_kw=export_kw)
    sessions = [
        car(f"S{i}", min_kw=min_kw, max_kw=max(min_kw, max_kw), soc=50 + i)
        for i, (min_kw, max_kw) in enumerate(cars)
    ]
    result = allocate_discharge(site, sessions, active=True)
    assert sum(result.values()) <= load_kw + export_kw + TOL
    for session in sessions:
        kw = result[session.key]
        assert kw == 0.0 or kw >= session.min_discharge_kw - TOL
    # Work-conserving up to minimums: a car left at 0 could not fit its minimum in
    # whole watts (in the room left, or below its own maximum).
    room = load_kw + export_kw - sum(result.values())
    for session in sessions:
        if result[session.key] == 0.0:
            need = math.ceil(session.min_discharge_kw * 1000 - 1e-6) / 1000
            most = math.floor(session.max_discharge_kw * 1000 + 1e-6) / 1000
            assert need > room - 1e-3 or need > most
