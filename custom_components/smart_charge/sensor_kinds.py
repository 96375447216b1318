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


def power_kw(*, measurement: bool = True) -> SensorKind:
    """Return power in kW (the engine's unit); a plan's power is no measurement."""
    kind = SensorKind(
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.KILO_WATT,
        suggested_display_precision=2,
    )
    if measurement:
        kind["state_class"] = SensorStateClass.MEASUREMENT
    return kind


def power_w() -> SensorKind:
    """Return a charger's power: measured in W, shown in kW."""
    return SensorKind(
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_unit_of_measurement=UnitOfPower.KILO_WATT,
        suggested_display_precision=2,
    )


def current_a() -> SensorKind:
    """Return a current in A, to a tenth."""
    return SensorKind(
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
    )


def energy_wh(state_class: SensorStateClass) -> SensorKind:
    """Return metered energy: counted in Wh, shown in kWh, a total of this class."""
    return SensorKind(
        device_class=SensorDeviceClass.ENERGY,
        state_class=state_class,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
    )


def energy_kwh() -> SensorKind:
    """Return planned energy in kWh (not metered: no state class)."""
    return SensorKind(
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
    )


def money() -> SensorKind:
    """Return a cost that adds up, to the cent."""
    return SensorKind(
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
    )
