"""Constants for the Smart Charge integration."""

from __future__ import annotations

from enum import StrEnum
import logging
from typing import Final

from .engine import BudgetReason, LimitReason
from .engine.planner_model import PlanMode

DOMAIN: Final = "smart_charge"
LOGGER = logging.getLogger(__package__)

# Site (config entry) data.
CONF_PORT: Final = "port"
CONF_MAIN_BREAKER_KW: Final = "main_breaker_kw"
CONF_MAIN_PHASE_LIMIT_A: Final = "main_phase_limit_a"
CONF_PHASES: Final = "phases"
CONF_VOLTAGE: Final = "voltage"
CONF_FAILSAFE_A: Final = "failsafe_current_a"
CONF_UNKNOWN_POLICY: Final = "unknown_charger_policy"
CONF_TLS_CERT: Final = "tls_certfile"
CONF_TLS_KEY: Final = "tls_keyfile"

# Panel subentry data.
CONF_NAME: Final = "name"
CONF_LIMIT_KW: Final = "limit_kw"
CONF_PHASE_LIMIT_A: Final = "phase_limit_a"
CONF_PARENT: Final = "parent"
CONF_STRATEGY: Final = "strategy"
CONF_SAFETY_MARGIN: Final = "safety_margin_pct"
CONF_LOAD_SENSOR: Final = "load_sensor"

# Charger subentry data.
CONF_CHARGER_ID: Final = "charger_id"
CONF_PANEL: Final = "panel"
CONF_MANAGED: Final = "managed"
CONF_MIN_CURRENT: Final = "min_current_a"
CONF_MAX_CURRENT: Final = "max_current_a"
CONF_GRID_PHASE: Final = "grid_phase"
CONF_PRIORITY: Final = "priority"
CONF_PROFILE_PURPOSE: Final = "profile_purpose"
CONF_STACK_LEVEL: Final = "stack_level"
CONF_PASSWORD: Final = "password"  # noqa: S105
# Does a three-phase charger switch to one phase when asked (auto: as it reports)?
CONF_PHASE_SWITCHING: Final = "phase_switching"
PHASE_SWITCHING_CHOICES: Final = ("auto", "supported", "unsupported")
DEFAULT_PHASE_SWITCHING: Final = "auto"
# The goal a session gets when it starts without one (a car that reports nothing),
# and the state-of-charge sensor that feeds its goal (charger subentry, all optional).
CONF_DEFAULT_MODE: Final = "default_mode"
CONF_DEFAULT_ENERGY: Final = "default_energy_kwh"
CONF_DEFAULT_DEPARTURE: Final = "default_departure"
CONF_SOC_SENSOR: Final = "soc_sensor"
# How a charger that switches phases is driven (phase policy select).
PHASE_POLICIES: Final = ("auto", "one", "three")

SUBENTRY_PANEL: Final = "panel"
SUBENTRY_CHARGER: Final = "charger"

# The main breaker is the root panel; it is configured on the site entry itself.
ROOT_PANEL_ID: Final = "main"
# V2X: the state of charge a discharging car never goes below, unless the user sets one.
DEFAULT_MIN_SOC_PCT: Final = 20.0

DEFAULT_PORT: Final = 9000
DEFAULT_MAIN_BREAKER_KW: Final = 11.0
DEFAULT_PHASES: Final = 3
DEFAULT_VOLTAGE: Final = 230
DEFAULT_FAILSAFE_A: Final = 0.0
DEFAULT_SAFETY_MARGIN: Final = 5.0
DEFAULT_MIN_CURRENT: Final = 6.0
DEFAULT_MAX_CURRENT: Final = 16.0
DEFAULT_PRIORITY: Final = 1
DEFAULT_STACK_LEVEL: Final = 1


class UnknownChargerPolicy(StrEnum):
    """What the server does with a charger identity that is not configured."""

    ACCEPT_AND_ASK = "accept_and_ask"
    REJECT = "reject"


STRATEGIES: Final = ("equal_share", "priority", "time_of_use")
GRID_PHASES: Final = ("L1", "L2", "L3")

# Why a panel's budget is what it is (panel "budget reason" sensor).
BUDGET_REASONS: Final = tuple(str(reason) for reason in BudgetReason)


class ChargerStatus(StrEnum):
    """The charger status sensor's options.

    The OCPP status vocabulary in snake_case, except where it would collide with
    Home Assistant's own states: OCPP "Unavailable" (taken out of service) is
    `out_of_service`, a charger that is not connected is `offline`, and a status the
    charger has not told yet is no option at all (the sensor is unknown then). `paused`:
    a car is plugged in with a running transaction but its allocated limit is 0 A.
    """

    AVAILABLE = "available"
    PREPARING = "preparing"
    CHARGING = "charging"
    PAUSED = "paused"
    SUSPENDED_EV = "suspended_ev"
    SUSPENDED_EVSE = "suspended_evse"
    FINISHING = "finishing"
    RESERVED = "reserved"
    OUT_OF_SERVICE = "out_of_service"
    FAULTED = "faulted"
    OCCUPIED = "occupied"
    OFFLINE = "offline"


CHARGER_STATUSES: Final = tuple(status.value for status in ChargerStatus)

# What holds a charger's session where it is (charger "limit reason" sensor).
LIMIT_REASONS: Final = tuple(str(reason) for reason in LimitReason)

# How a charger's car wants its energy (charging goal "mode" select and service).
CHARGING_MODES: Final = tuple(str(mode) for mode in PlanMode)
DEFAULT_CHARGING_MODE: Final = str(PlanMode.AS_FAST_AS_POSSIBLE)
# Why a goal is not planned as set (the planned energy sensor's "reason"): its SoC
# sensor has no usable state, so its energy is planned instead, or nothing is.
PLAN_REASON_ENERGY_FALLBACK: Final = "energy_fallback"
PLAN_REASON_SOC_UNAVAILABLE: Final = "soc_unavailable"
# Replans wait this long after a change, so a burst of changes plans once.
PLAN_DEBOUNCE_S: Final = 1.0

# Energy-aware budgets (panel subentry data, and the site entry for the main breaker).
CONF_LOAD_INVERT: Final = "load_invert"
CONF_LOAD_CURRENTS: Final = ("load_current_l1", "load_current_l2", "load_current_l3")
CONF_SOLAR_MODE: Final = "solar_mode"
CONF_GRID_SENSOR: Final = "grid_sensor"
CONF_GRID_INVERT: Final = "grid_invert"
CONF_SOLAR_START_KW: Final = "solar_start_kw"
CONF_SOLAR_START_DELAY: Final = "solar_start_delay_s"
CONF_SOLAR_STOP_DELAY: Final = "solar_stop_delay_s"
CONF_PRICE_SENSOR: Final = "price_sensor"
CONF_TARIFF_MODE: Final = "tariff_mode"
CONF_PRICE_THRESHOLD: Final = "price_threshold"
CONF_CHEAPEST_HOURS: Final = "cheapest_hours"
CONF_DEPARTURE: Final = "departure_time"
CONF_TARIFF_HOLD_MINIMUM: Final = "tariff_hold_minimum"
CONF_TOU_WINDOWS: Final = "time_of_use_windows"
# Only on the site (main breaker): the PV forecast entities the plans read, and what
# exported energy earns (a solar kWh then costs that instead of nothing).
CONF_SOLAR_FORECAST: Final = "solar_forecast"
CONF_FEED_IN_PRICE: Final = "feed_in_price"

SOLAR_MODES: Final = ("off", "solar", "min_solar")
TARIFF_MODES: Final = ("off", "threshold", "cheapest")
DEFAULT_SOLAR_START_KW: Final = 1.4
DEFAULT_SOLAR_START_DELAY: Final = 60
DEFAULT_SOLAR_STOP_DELAY: Final = 300
# A load sensor unavailable this long raises a repair issue.
STALE_REPAIR_AFTER_S: Final = 300
# Budget sources are re-read at least this often (solar delays, price hours, stale sensors).
BUDGET_TICK_S: Final = 10
BUDGET_DEBOUNCE_S: Final = 0.5

# Chargers keep profiles in flash: no increase smaller than this is written, and a charger
# gets at most one increase per interval (decreases are never held back).
INCREASE_DEAD_BAND_A: Final = 0.5
MIN_INCREASE_INTERVAL_S: Final = 10.0
CALL_TIMEOUT_S: Final = 10.0

# Options of a site (the options flow).
CONF_DEAD_BAND_A: Final = "increase_dead_band_a"
CONF_MIN_INCREASE_INTERVAL: Final = "min_increase_interval_s"
CONF_CALL_TIMEOUT: Final = "call_timeout_s"
# When minimums cannot all be met, paused cars take turns this often (0: no rotation).
CONF_ROTATION_PERIOD: Final = "rotation_period_min"
# V2X: what bidirectional cars may send to the grid beyond the house load (kW; 0: none).
CONF_EXPORT_LIMIT: Final = "export_limit_kw"
DEFAULT_ROTATION_PERIOD_MIN: Final = 15.0
