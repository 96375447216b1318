"""Bidirectional charging (V2X) on the wire: who may discharge, and the setpoints sent.

A session discharges only when all of these hold:

- its charger speaks OCPP 2.1 and its device model says so: `V2XChargingCtrlr.Enabled`
  is true and `V2XChargingCtrlr.SupportedOperationModes` lists `CentralSetpoint`;
- its car offers a bidirectional transfer (NotifyEVChargingNeeds with an `*_BPT` mode
  and `v2xChargingParameters.maxDischargePower`) and reports its state of charge
  (MeterValues `SoC`);
- the user allowed it for this charger (`ChargerConfig.allow_discharge`, off by
  default) and its state of charge is above the user's minimum
  (`ChargerConfig.min_soc_pct`);
- discharging is wanted now (`DischargeController.wanted`: the price at or above the
  threshold, or set by the owner), and `engine.allocate_discharge` gives it a share under
  every breaker, both ways.

The writer sends such a session a 2.1 TxProfile whose period has `operationMode`
CentralSetpoint, `limit` 0 (it draws nothing), a negative `setpoint` and the same
`dischargeLimit`. Safety ordering: a session first goes to setpoint 0 with limit 0 (a
pure decrease), and only once that is acknowledged to its negative setpoint; it stops
the same way (setpoint 0, limit 0) before it charges again with a plain profile. For
the charging solve a session in V2X mode counts as 0 (it never makes import room).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
import logging
import math
from typing import Any, Final

from custom_components.smart_charge.csms import (
    CsmsError,
    DynamicScheduleUpdate,
    EVChargingNeeds,
    MeterValuesReceived,
    TransactionStopped,
)
from custom_components.smart_charge.csms.capabilities import RATE_AMPS
from custom_components.smart_charge.csms.charge_point import OCPP21
from custom_components.smart_charge.csms.server import CentralSystem
from custom_components.smart_charge.engine import (
    Site,
    V2XSession,
    allocate_discharge,
    discharge_wanted,
)

from .config import ChargerConfig
from .sessions import ChargingSession, session_key

_LOGGER = logging.getLogger(__name__)

V2X_CTRLR: Final = "V2XChargingCtrlr"
V2X_VARIABLES: Final = ("Enabled", "SupportedOperationModes")
CENTRAL_SETPOINT: Final = "CentralSetpoint"
# A car that reached its minimum state of charge discharges again only once it is this
# far above it (percentage points), so it does not cycle around the minimum.
SOC_HYSTERESIS_PCT: Final = 5.0


@dataclass(slots=True)
class EvV2X:
    """What a car said about giving power back."""

    bidirectional: bool = False
    max_discharge_w: float | None = None
    min_discharge_w: float | None = None
    soc_pct: float | None = None


def with_setpoint(
    body: dict[str, Any], setpoint_w: float, unit: str, volts: float
) -> dict[str, Any]:
    """Put a CentralSetpoint setpoint (W, <= 0) into every period of a 2.1 profile.

    In amps mode the setpoint is A per phase (`volts`: voltage x phases), its
    magnitude rounded down to 0.1 A; in watts mode down to 1 W.
    """
    value = setpoint_in_unit(setpoint_w, unit, volts)
    for schedule in body["chargingSchedule"]:
        for period in schedule["chargingSchedulePeriod"]:
            period["operationMode"] = CENTRAL_SETPOINT
            period["setpoint"] = value
            period["dischargeLimit"] = min(0.0, value)
    return body


def setpoint_in_unit(setpoint_w: float, unit: str, volts: float) -> float:
    """Return a setpoint (W, <= 0) in a profile's unit, its magnitude rounded down."""
    magnitude = max(0.0, -setpoint_w)
    if unit == RATE_AMPS:
        return -math.floor(magnitude / volts * 10 + 1e-9) / 10 or 0.0
    return -float(math.floor(magnitude + 1e-9)) or 0.0


class DischargeController:
    """The V2X state of a site: what chargers and cars reported, what is wanted."""

    def __init__(
        self,
        server: CentralSystem,
        *,
        on_learned: Callable[[], None],
    ) -> None:
        """Ask `server` about chargers; `on_learned` runs when a probe finished."""
        self.server = server
        self._on_learned = on_learned
        self.cars: dict[str, EvV2X] = {}
        # Per charger: the device model's answer (None: not asked yet).
        self.supported: dict[str, bool] = {}
        self._probing: set[str] = set()
        # Discharge is wanted: the owner sets it, or the price rule decides.
        self.forced: bool | None = None
        self.price: float | None = None
        self.threshold: float | None = None
        # The last round's discharge per session key (W, > 0), for the owner.
        self.discharging_w: dict[str, float] = {}
        # Sessions that reached their minimum state of charge (see SOC_HYSTERESIS_PCT).
        self.at_minimum: set[str] = set()
        # The breakers' ratings (kW) by panel id, when the site's limits are budgets
        # lowered by tariffs, solar or overrides: the reverse direction is bounded by
        # the breaker, not by what charging may use. Empty: the site's limits.
        self.ratings_kw: dict[str, float] = {}

    # ------------------------------------------------------------------ inputs

    @property
    def wanted(self) -> bool:
        """Return whether discharging is wanted now."""
        if self.forced is not None:
            return self.forced
        return discharge_wanted(self.price, self.threshold)

    def set_price(self, price: float | None, threshold: float | None) -> None:
        """Discharge while `price` is at or above `threshold` (None: never)."""
        self.price, self.threshold = price, threshold

    def observe(self, event: object, config: ChargerConfig | None) -> bool:
        """Learn from a server event; return whether the setpoints may change."""
        match event:
            case EVChargingNeeds():
                car = self.cars.setdefault(
                    session_key(event.charger_id, event.connector_id), EvV2X()
                )
                told = (car.bidirectional, car.max_discharge_w)
                car.bidirectional = event.bidirectional
                car.max_discharge_w = event.max_discharge_power_w
                car.min_discharge_w = event.min_discharge_power_w
                return told != (car.bidirectional, car.max_discharge_w)
            case MeterValuesReceived(soc=soc) if soc is not None:
                car = self.cars.setdefault(
                    session_key(event.charger_id, event.connector_id), EvV2X()
                )
                key = session_key(event.charger_id, event.connector_id)
                before, car.soc_pct = car.soc_pct, soc
                if config is None or not config.allow_discharge:
                    return False
                floor = config.min_soc_pct
                if soc <= floor:
                    self.at_minimum.add(key)
                elif key in self.at_minimum and soc >= floor + SOC_HYSTERESIS_PCT:
                    self.at_minimum.discard(key)
                    return True
                # Crossing the minimum (or a first reading) changes the setpoints.
                return before is None or (before > floor) != (soc > floor)
            case TransactionStopped():
                key = session_key(event.charger_id, event.connector_id)
                self.cars.pop(key, None)
                self.at_minimum.discard(key)
                return False
            case _:
                return False

    def needs_probe(self, charger_id: str) -> bool:
        """Return whether a charger's V2X support should be asked now."""
        return (
            charger_id not in self.supported
            and charger_id not in self._probing
            and self.server.ocpp_version(charger_id) == OCPP21
            and self.server.connected(charger_id)
            and any(
                car.bidirectional
                for key, car in self.cars.items()
                if key.startswith(f"{charger_id}#")
            )
        )

    async def probe(self, charger_id: str) -> None:
        """Read the charger's V2XChargingCtrlr variables; then rebalance."""
        self._probing.add(charger_id)
        try:
            results = await self.server.get_variables(
                charger_id, [(V2X_CTRLR, name) for name in V2X_VARIABLES]
            )
        except CsmsError as err:
            _LOGGER.warning("Charger %s: V2X support unknown (%s)", charger_id, err)
            self.supported[charger_id] = False
            return
        finally:
            self._probing.discard(charger_id)
        values = {r.variable: r.value for r in results if r.status == "Accepted"}
        modes = {
            m.strip() for m in (values.get("SupportedOperationModes") or "").split(",")
        }
        supported = (
            str(values.get("Enabled")).lower() == "true" and CENTRAL_SETPOINT in modes
        )
        self.supported[charger_id] = supported
        _LOGGER.info(
            "Charger %s %s bidirectional charging (CentralSetpoint)",
            charger_id,
            "supports" if supported else "does not support",
        )
        self._on_learned()

    def refused(self, charger_id: str) -> None:
        """Stop sending setpoints to a charger that refused one."""
        _LOGGER.warning(
            "Charger %s refused a V2X setpoint; it only charges from now on",
            charger_id,
        )
        self.supported[charger_id] = False

    # ------------------------------------------------------------------ solve

    def capable(self, session: ChargingSession, config: ChargerConfig) -> bool:
        """Return whether this session may be steered by setpoints at all."""
        car = self.cars.get(session.key)
        return (
            config.allow_discharge
            and config.managed
            and self.supported.get(session.charger_id, False)
            and self.server.ocpp_version(session.charger_id) == OCPP21
            and car is not None
            and car.bidirectional
            and (car.max_discharge_w or 0.0) > 0
        )

    def setpoints(
        self,
        site: Site,
        sessions: Iterable[ChargingSession],
        chargers: Mapping[str, ChargerConfig],
        *,
        voltage_v: Callable[[ChargerConfig], float],
        installed: Callable[[ChargingSession], tuple[float | None, float | None]],
    ) -> tuple[dict[str, float], bool]:
        """Return the setpoint (W, <= 0) of every session in V2X mode, and a follow-up.

        `installed(session)` is (acknowledged limit A, acknowledged setpoint W) of its
        TxProfile. A session that should discharge but does not hold limit 0 in
        CentralSetpoint yet gets 0 first (the second value is then True: rebalance
        again once it is acknowledged). A session that held a setpoint and should not
        discharge now gets 0; one already at 0 leaves V2X mode (not in the result).
        """
        v2x: list[V2XSession] = []
        for session in sessions:
            config = chargers.get(session.charger_id)
            if config is None or not self.capable(session, config):
                continue
            car = self.cars[session.key]
            if session.key in self.at_minimum:
                continue  # until it is SOC_HYSTERESIS_PCT above its minimum again
            volts = voltage_v(config)
            # The car's own minimum, else the charger's minimum current.
            minimum_w = (
                car.min_discharge_w
                if car.min_discharge_w is not None
                else config.min_current_a * volts * config.phases
            )
            v2x.append(
                V2XSession(
                    key=session.key,
                    panel_id=config.panel_id,
                    soc_pct=car.soc_pct,
                    min_soc_pct=config.min_soc_pct,
                    max_discharge_kw=min(
                        car.max_discharge_w or 0.0,
                        config.max_current_a * volts * config.phases,
                    )
                    / 1000.0,
                    min_discharge_kw=minimum_w / 1000.0,
                    phases=config.phases,
                    voltage_v=volts,
                )
            )
        shares = (
            allocate_discharge(self._rated(site), v2x, active=self.wanted)
            if v2x
            else {}
        )
        result: dict[str, float] = {}
        follow_up = False
        self.discharging_w = {}
        for session in {s.key: s for s in sessions}.values():
            limit_a, setpoint_w = installed(session)
            share_w = math.floor(shares.get(session.key, 0.0) * 1000)
            if share_w > 0:
                if limit_a == 0 and setpoint_w is not None:
                    result[session.key] = -float(share_w)
                    self.discharging_w[session.key] = float(share_w)
                else:
                    result[session.key] = 0.0  # stop drawing first
                    follow_up = True
            elif setpoint_w is not None and setpoint_w != 0:
                result[session.key] = 0.0  # stop discharging first
        return result, follow_up

    def _rated(self, site: Site) -> Site:
        """Return the site with each breaker's rating as its limit (where known)."""
        if not self.ratings_kw:
            return site
        panels = [
            replace(panel, limit_kw=self.ratings_kw.get(panel.id, panel.limit_kw))
            for panel in site.panels
        ]
        return replace(site, panels=panels)

    # ------------------------------------------------------------------ pulls

    def update_for(
        self,
        limit_a: float | None,
        setpoint_w: float | None,
        unit: str,
        volts: float,
    ) -> DynamicScheduleUpdate | None:
        """Return a Dynamic profile's update from what its slot holds (None: nothing)."""
        if limit_a is None:
            return None
        limit = limit_a if unit == RATE_AMPS else float(int(limit_a * volts + 1e-6))
        if setpoint_w is None:
            return DynamicScheduleUpdate(limit)
        setpoint = setpoint_in_unit(setpoint_w, unit, volts)
        return DynamicScheduleUpdate(limit, setpoint, min(0.0, setpoint))


__all__ = [
    "CENTRAL_SETPOINT",
    "V2X_CTRLR",
    "DischargeController",
    "EvV2X",
    "setpoint_in_unit",
    "with_setpoint",
]
