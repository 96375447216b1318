"""The demo's two sites: what `prepare.py` configures and `fleet.py` simulates.

Office: the site of the seed document (main breaker 250 kW; Floor 1 and Floor 2 at 80 kW;
a VIP panel at 50 kW whose chargers are not managed; an employee lot at 40 kW with
priorities). Home: a 25 A three-phase main fuse (about 17.3 kW) and two chargers.
"""

from __future__ import annotations

from dataclasses import dataclass

HTTP_PORT = 8123
USERNAME = "demo"
PASSWORD = "smartcharge"  # noqa: S105 - a local demo, printed by scripts/demo


@dataclass(frozen=True, kw_only=True)
class DemoPanel:
    """A sub-panel (config subentry)."""

    panel_id: str
    name: str
    limit_kw: float
    strategy: str = "equal_share"
    parent: str = "main"


@dataclass(frozen=True, kw_only=True)
class DemoCharger:
    """A charger (config subentry) and the car the simulator plugs into it."""

    charger_id: str
    panel: str
    version: str = "1.6"
    phases: int = 3
    grid_phase: str | None = None
    max_current_a: float = 32.0
    min_current_a: float = 6.0
    priority: int = 1
    managed: bool = True
    car_max_a: float = 32.0
    # A car that stays plugged in all day (so a panel is always busy).
    stays: bool = False
    # A charging goal: the charger's default goal (mode, energy, departure hour), which
    # the car (OCPP 2.x NotifyEVChargingNeeds) also reports when it plugs in.
    goal_kwh: float | None = None
    departure_hour: int | None = None
    goal_mode: str | None = None


@dataclass(frozen=True, kw_only=True)
class DemoSite:
    """A site (config entry) with its OCPP port."""

    entry_id: str
    title: str
    port: int
    main_breaker_kw: float
    main_phase_limit_a: float | None
    # Object id prefix of the root panel's entities (both roots are called "Main breaker").
    root_object_id: str
    panels: tuple[DemoPanel, ...]
    chargers: tuple[DemoCharger, ...]
    load_sensor: str | None = None
    # The tariff sensor (hourly prices of today and tomorrow) the plans are priced with.
    price_sensor: str | None = None

    @property
    def url(self) -> str:
        """Return the OCPP URL the simulated chargers use."""
        return f"ws://127.0.0.1:{self.port}"


def _office_chargers() -> tuple[DemoCharger, ...]:
    chargers: list[DemoCharger] = [
        DemoCharger(
            charger_id=f"CP-{number:02d}",
            panel="office_floor_1" if number <= 4 else "office_floor_2",
            version="1.6" if number % 2 else "2.0.1",
            car_max_a=16.0 if number == 7 else 32.0,
            priority=2 if number == 5 else 1,
            stays=number in (1, 2, 3, 5, 6),
        )
        for number in range(1, 9)
    ]
    chargers += [
        DemoCharger(charger_id="CP-09", panel="office_vip", managed=False, stays=True),
        DemoCharger(
            charger_id="CP-10", panel="office_vip", managed=False, version="2.0.1"
        ),
        DemoCharger(
            charger_id="CP-11", panel="office_employees", priority=3, stays=True
        ),
        DemoCharger(
            charger_id="CP-12", panel="office_employees", priority=1, version="2.0.1"
        ),
    ]
    return tuple(chargers)


OFFICE = DemoSite(
    entry_id="01JDEMO0FF1CE0000000000000",
    title="Office",
    port=9000,
    main_breaker_kw=250.0,
    main_phase_limit_a=None,
    root_object_id="office_main_breaker",
    panels=(
        DemoPanel(panel_id="office_floor_1", name="Floor 1", limit_kw=80.0),
        DemoPanel(
            panel_id="office_floor_2",
            name="Floor 2",
            limit_kw=80.0,
            strategy="priority",
        ),
        DemoPanel(panel_id="office_vip", name="VIP", limit_kw=50.0),
        DemoPanel(
            panel_id="office_employees",
            name="Employees",
            limit_kw=40.0,
            strategy="priority",
        ),
    ),
    chargers=_office_chargers(),
)

HOME = DemoSite(
    entry_id="01JDEMOH0ME00000000000000",
    title="Home",
    port=9001,
    # 25 A x 3 phases x 230 V = 17.25 kW
    main_breaker_kw=17.3,
    main_phase_limit_a=25.0,
    root_object_id="home_main_fuse",
    panels=(),
    chargers=(
        DemoCharger(
            charger_id="HOME-1",
            panel="main",
            max_current_a=16.0,
            car_max_a=16.0,
            stays=True,
        ),
        DemoCharger(
            charger_id="HOME-2",
            panel="main",
            version="2.0.1",
            phases=1,
            grid_phase="L2",
            # At most the main fuse's 25 A on its phase (the config flow checks it).
            max_current_a=25.0,
            car_max_a=32.0,
            # 20 kWh by 7:00, on the cheapest hours: the dashboard shows the plan.
            goal_kwh=20.0,
            departure_hour=7,
            goal_mode="by_departure_cheapest",
        ),
    ),
    load_sensor="sensor.home_house_load",
    price_sensor="sensor.home_electricity_price",
)

SITES = (OFFICE, HOME)

PANEL_ENTITY_KEYS = {
    "number": ("grid_limit",),
    "select": ("strategy",),
    "sensor": (
        "allocated_power",
        "measured_power",
        "headroom",
        "active_sessions",
        "budget_reason",
        "planned_peak",
    ),
}
