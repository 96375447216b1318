"""What a charger can do with charging profiles, learned after boot and from its answers.

1.6 reads configuration keys, 2.x reads SmartChargingCtrlr variables. Fallbacks that
worked (rate unit, profile purpose) and a charger that accepts no profile at all are
remembered here too, and persisted with `to_dict` / `from_dict`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from custom_components.smart_charge.units import RateUnit

if TYPE_CHECKING:
    from .charge_point import VariableResult

RATE_AMPS: Final = RateUnit.AMPS
RATE_WATTS: Final = RateUnit.WATTS

# 1.6 configuration keys (§9.4 Smart Charging profile, §9.1 core).
KEY_MAX_STACK_LEVEL: Final = "ChargeProfileMaxStackLevel"
KEY_RATE_UNITS: Final = "ChargingScheduleAllowedChargingRateUnit"
KEY_FEATURE_PROFILES: Final = "SupportedFeatureProfiles"
KEY_MAX_PROFILES: Final = "MaxChargingProfilesInstalled"
KEY_MAX_PERIODS: Final = "ChargingScheduleMaxPeriods"
OCPP16_KEYS: Final = (
    KEY_MAX_STACK_LEVEL,
    KEY_RATE_UNITS,
    KEY_FEATURE_PROFILES,
    KEY_MAX_PROFILES,
    KEY_MAX_PERIODS,
)

# 2.x SmartChargingCtrlr variables (2.0.1 part 2, appendix "Referenced components").
SMART_CHARGING_CTRLR: Final = "SmartChargingCtrlr"
OCPP2_VARIABLES: Final = (
    (SMART_CHARGING_CTRLR, "Enabled"),
    (SMART_CHARGING_CTRLR, "Available"),
    (SMART_CHARGING_CTRLR, "RateUnit"),
    (SMART_CHARGING_CTRLR, "ProfileStackLevel"),
    (SMART_CHARGING_CTRLR, "PeriodsPerSchedule"),
    # Phase switching: 3 -> 1 during a transaction, and choosing the phase to use.
    (SMART_CHARGING_CTRLR, "Phases3to1"),
    (SMART_CHARGING_CTRLR, "ACPhaseSwitchingSupported"),
)

_UNIT_NAMES: Final = {
    "current": RATE_AMPS,
    "a": RATE_AMPS,
    "power": RATE_WATTS,
    "w": RATE_WATTS,
}


def _int(raw: object) -> int | None:
    try:
        value = int(str(raw).strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _bool(raw: object) -> bool | None:
    text = str(raw).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    return None


def _rate_units(raw: object) -> tuple[RateUnit, ...]:
    units: list[RateUnit] = []
    for part in str(raw).replace(";", ",").split(","):
        unit = _UNIT_NAMES.get(part.strip().lower())
        if unit is not None and unit not in units:
            units.append(unit)
    return tuple(units)


@dataclass(frozen=True, slots=True)
class ChargerCapabilities:
    """A charger's smart-charging abilities and the profile shape it accepts.

    `None` means "not reported"; the controller then assumes the common case (amps,
    the configured purpose and stack level) and falls back when the charger refuses.
    """

    rate_units: tuple[RateUnit, ...] = (RATE_AMPS, RATE_WATTS)
    max_stack_level: int | None = None
    max_profiles: int | None = None
    max_periods: int | None = None
    smart_charging: bool = True
    learned: bool = False
    # Remembered from the answers: what worked, or that nothing did.
    working_rate_unit: RateUnit | None = None
    working_purpose: str | None = None
    rejects_profiles: bool = False
    # 2.x: SmartChargingCtrlr.Phases3to1 (None: not reported, as on every 1.6 charger)
    # and ACPhaseSwitchingSupported (it takes `phaseToUse`).
    phase_switching: bool | None = None
    phase_to_use: bool | None = None

    @property
    def preferred_rate_unit(self) -> RateUnit:
        """Return the unit to try first: what worked, else amps when supported."""
        if self.working_rate_unit is not None:
            return self.working_rate_unit
        return (
            RATE_AMPS
            if RATE_AMPS in self.rate_units or not self.rate_units
            else RATE_WATTS
        )

    @property
    def controllable(self) -> bool:
        """Return whether profiles can limit this charger at all."""
        return self.smart_charging and not self.rejects_profiles

    def stack_level(self, wanted: int) -> int:
        """Clamp a stack level to what the charger supports."""
        if self.max_stack_level is None:
            return wanted
        return max(0, min(wanted, self.max_stack_level))

    def with_working(self, purpose: str, rate_unit: str) -> ChargerCapabilities:
        """Return a copy that remembers a profile shape the charger accepted."""
        return replace(
            self,
            working_purpose=purpose,
            working_rate_unit=RateUnit(rate_unit),
            rejects_profiles=False,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-able data."""
        return {
            "rate_units": list(self.rate_units),
            "max_stack_level": self.max_stack_level,
            "max_profiles": self.max_profiles,
            "max_periods": self.max_periods,
            "smart_charging": self.smart_charging,
            "learned": self.learned,
            "working_rate_unit": self.working_rate_unit,
            "working_purpose": self.working_purpose,
            "rejects_profiles": self.rejects_profiles,
            "phase_switching": self.phase_switching,
            "phase_to_use": self.phase_to_use,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChargerCapabilities:
        """Read data written by `to_dict`; raises ValueError/TypeError on garbage."""
        units = tuple(
            RateUnit(str(unit)) for unit in data.get("rate_units", tuple(RateUnit))
        )  # ValueError on a unit that is not one

        def optional_int(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else int(value)

        def optional_bool(key: str) -> bool | None:
            value = data.get(key)
            return None if value is None else bool(value)

        def optional_str(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            rate_units=units,
            max_stack_level=optional_int("max_stack_level"),
            max_profiles=optional_int("max_profiles"),
            max_periods=optional_int("max_periods"),
            smart_charging=bool(data.get("smart_charging", True)),
            learned=bool(data.get("learned", False)),
            working_rate_unit=None
            if data.get("working_rate_unit") is None
            else RateUnit(str(data["working_rate_unit"])),
            working_purpose=optional_str("working_purpose"),
            rejects_profiles=bool(data.get("rejects_profiles", False)),
            phase_switching=optional_bool("phase_switching"),
            phase_to_use=optional_bool("phase_to_use"),
        )


def from_ocpp16_configuration(
    values: Mapping[str, str | None],
    previous: ChargerCapabilities | None = None,
) -> ChargerCapabilities:
    """Read GetConfiguration values; keys the charger did not report stay unknown."""
    base = previous or ChargerCapabilities()
    units = _rate_units(values.get(KEY_RATE_UNITS) or "")
    features = values.get(KEY_FEATURE_PROFILES)
    smart = (
        True
        if features is None
        else "smartcharging" in features.replace(" ", "").lower().split(",")
    )
    return replace(
        base,
        rate_units=units or (RATE_AMPS, RATE_WATTS),
        max_stack_level=_int(values.get(KEY_MAX_STACK_LEVEL)),
        max_profiles=_int(values.get(KEY_MAX_PROFILES)),
        max_periods=_int(values.get(KEY_MAX_PERIODS)),
        smart_charging=smart,
        learned=True,
    )


def from_ocpp2_variables(
    results: Iterable[VariableResult],
    previous: ChargerCapabilities | None = None,
) -> ChargerCapabilities:
    """Read GetVariables results for the SmartChargingCtrlr variables."""
    base = previous or ChargerCapabilities()
    values = {
        result.variable: result.value
        for result in results
        if result.component == SMART_CHARGING_CTRLR
        and result.status == "Accepted"
        and result.value is not None
    }
    enabled = _bool(values.get("Enabled"))
    available = _bool(values.get("Available"))
    units = _rate_units(values.get("RateUnit") or "")
    return replace(
        base,
        rate_units=units or (RATE_AMPS, RATE_WATTS),
        max_stack_level=_int(values.get("ProfileStackLevel")),
        max_periods=_int(values.get("PeriodsPerSchedule")),
        smart_charging=enabled is not False and available is not False,
        phase_switching=_bool(values.get("Phases3to1")),
        phase_to_use=_bool(values.get("ACPhaseSwitchingSupported")),
        learned=True,
    )


__all__ = [
    "OCPP2_VARIABLES",
    "OCPP16_KEYS",
    "RATE_AMPS",
    "RATE_WATTS",
    "ChargerCapabilities",
    "from_ocpp2_variables",
    "from_ocpp16_configuration",
]
