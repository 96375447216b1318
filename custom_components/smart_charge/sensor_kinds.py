"""The kinds of value a sensor of Smart Charge shows, each with its unit and precision.

A sensor description takes its kind with `**`: `ChargerSensorDescription(key=...,
**current_a(), value_fn=...)`. A kind is the device class, the state class, the unit
the value is in (and the one it is shown in) and the shown precision, decided here
once for the panels', the chargers' and the tags' sensors alike.
"""

from __future__ import annotations

from typing import TypedDict

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import UnitOfElectricCurrent, UnitOfEnergy, UnitOfPower


class SensorKind(TypedDict, total=False):
    """The fields of a sensor description that its kind of value decides."""

    device_class: SensorDeviceClass
    state_class: SensorStateClass
    native_unit_of_measurement: str
    suggested_unit_of_measurement: str
    suggested_display_precision: int


def _kind(
    device_class: SensorDeviceClass,
    state_class: SensorStateClass | None,
    unit: str | None,
    *,
    shown_in: str | None = None,
    precision: int = 2,
) -> SensorKind:
    """Return a kind: the value is in `unit`, shown in `shown_in` if another."""
    kind = SensorKind(device_class=device_class, suggested_display_precision=precision)
    if state_class is not None:
        kind["state_class"] = state_class
    if unit is not None:
        kind["native_unit_of_measurement"] = unit
    if shown_in is not None:
        kind["suggested_unit_of_measurement"] = shown_in
    return kind


def power_kw(*, measurement: bool = True) -> SensorKind:
    """Return power in kW (the engine's unit); a plan's power is no measurement."""
    state_class = SensorStateClass.MEASUREMENT if measurement else None
    return _kind(SensorDeviceClass.POWER, state_class, UnitOfPower.KILO_WATT)


def power_w() -> SensorKind:
    """Return a charger's power: measured in W, shown in kW."""
    return _kind(
        SensorDeviceClass.POWER,
        SensorStateClass.MEASUREMENT,
        UnitOfPower.WATT,
        shown_in=UnitOfPower.KILO_WATT,
    )


def current_a() -> SensorKind:
    """Return a current in A, to a tenth."""
    amps, measured = UnitOfElectricCurrent.AMPERE, SensorStateClass.MEASUREMENT
    return _kind(SensorDeviceClass.CURRENT, measured, amps, precision=1)


def energy_wh(state_class: SensorStateClass) -> SensorKind:
    """Return metered energy: counted in Wh, shown in kWh, a total of this class."""
    wh, kwh = UnitOfEnergy.WATT_HOUR, UnitOfEnergy.KILO_WATT_HOUR
    return _kind(SensorDeviceClass.ENERGY, state_class, wh, shown_in=kwh)


def energy_kwh() -> SensorKind:
    """Return planned energy in kWh (not metered: no state class)."""
    return _kind(SensorDeviceClass.ENERGY, None, UnitOfEnergy.KILO_WATT_HOUR)


def money() -> SensorKind:
    """Return a cost that adds up, to the cent (its currency is the site's)."""
    return _kind(SensorDeviceClass.MONETARY, SensorStateClass.TOTAL, None)
