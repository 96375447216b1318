"""Simulated OCPP 1.6J, 2.0.1 and 2.1 chargers built on the `ocpp` library's ChargePoint.

Used by the tests, the demo and `scripts/simulate`:

    charger = SimulatedCharger("CP-1", "ws://127.0.0.1:9000", version="2.1")
    await charger.start()
    await charger.plug_in()
    profile = await charger.wait_for_profile(lambda p: p.limit < 16, timeout=5)
    assert charger.limit_in_force(1) == profile.limit
    await charger.unplug()
    await charger.stop()

What it sent: every frame (`sent`, `sent_calls(action)`). What it received: every frame
(`frames`), every SetChargingProfile (`received_profiles`,
with a sequence number shared by all simulated chargers so tests can check the order across
chargers; `profile_answers[seq]`, `profile_answered_at[seq]`, `rejection_reasons[seq]`).

What it holds and does, evaluated as a real charger does (`profiles.py`; OCPP 1.6 §3.13,
2.0.1 K01/K08):

- `installed_profiles`: the stored profiles (`InstalledProfile`: id, connector, purpose,
  stack level, kind, rate unit, periods with numberPhases, transactionId, startSchedule,
  validFrom/validTo, 2.1 maxOfflineDuration/invalidAfterOfflineDuration). The same id
  replaces; in 1.6 so does the same purpose and stack level on a connector. ClearChargingProfile
  by id or by connector/purpose/stack level answers `Unknown` when nothing matched. TxProfiles
  end with their transaction (and with a reboot).
- `limit_in_force(cid)`: A per phase now. The station maximum on connector 0 caps all; a
  running transaction's TxProfile (highest stack level) wins, else the connector's
  TxDefaultProfile, else connector 0's, else `hardware_max_a`. Watts become amps with
  numberPhases and `voltage_v`. On an idle connector it equals `start_limit(cid)`: what a car
  plugging in now would start at. `limit(cid)` gives the deciding profile too.
- `current_a(cid)`, `phase_currents(cid)`, `power_w(cid)`: what the car really draws
  (min(car, limit)); meter values report exactly that, per phase (L1..L3, or `grid_phase`
  on a single-phase charger). GetCompositeSchedule answers the limit in force, in the
  requested unit.
- `connectors[cid]`: `plugged`, `in_transaction`, `transaction_id` (the id as the charger
  knows it: a 1.6 charger learns it from StartTransaction.conf, the moment the conf arrives).

Options (constructor keywords):

- protocol: `version="1.6" | "2.0.1" | "2.1"`, `subprotocols=`, `password=`, `ssl_context=`.
- hardware: `phases`, `voltage_v`, `connectors`, `car_max_a`, `hardware_max_a` (the
  charger's own maximum, default 32 A or `car_max_a` if higher), `grid_phase="L2"` (single-phase),
  `meter_interval_s` (periodic meter values; they go on offline as energy).
- capabilities: `rate_units="Current,Power"`, `amps_only=True` (1.6 `Current`),
  `max_stack_level`, `max_profiles`, `max_periods` (ChargingScheduleMaxPeriods, default 24:
  a schedule with more periods is rejected), `smart_charging=False` (no SmartCharging
  profile).
- `strict=True`, like chargers built on other OCPP implementations (schemas are always
  validated both ways by the library): rejects a TxProfile on connector 0, without a running
  transaction or whose `transactionId` is not the running one as the charger knows it (1.6:
  before its StartTransaction.conf), a 2.x TxProfile without transactionId, a station
  maximum on a connector > 0 or Relative, Absolute/Recurring without startSchedule, Relative
  with one, periods not starting at 0 and increasing, a 2.x profile with the purpose and
  stack level of another id, more than `max_profiles`, an unknown connector. Every charger
  rejects a rate unit it does not support and a stack level above its maximum.
- hostile: `profile_delay_s` (slow answers), `reject_first=N` (its first N
  SetChargingProfile), `reject_purposes={"TxProfile"}`, `profile_status="Rejected" |
  "NotSupported" | "CallError"` (refuses everything), `ignore_actions` (a set: never answers
  those), `call_errors` (a set: answers those with a CALLERROR NotImplemented),
  `composite_status="Rejected"` / `composite_unit="W"` (how GetCompositeSchedule answers), `ignores_limits=True` (accepts, draws the car maximum), `stuck_at_a=9.0` (accepts,
  never draws below 9 A), `reboot_on_reset=True` (Reset reboots it).
- time: `clock=` a callable returning an aware datetime (tests move it to expire profiles);
  `message_clock=` the time written into its messages (meter values, transactions).
- 2.1 Dynamic profiles: `dynamic_profiles=False` refuses them and UpdateDynamicSchedule;
  `pull_dynamic_s=` asks for its Dynamic TxProfile's limit (PullDynamicScheduleUpdate)
  that often while a session runs; `pull_dynamic_schedule(cid)` / `pull_profile(id)` pull
  once (`pulls` lists (profile id, status, scheduleUpdate)).
- 2.1 V2X: `bidirectional=True` (2.1 only) reports `V2XChargingCtrlr.Enabled`,
  `SupportedOperationModes` (ChargingOnly, CentralSetpoint) and
  `SupportedEnergyTransferModes` (AC_three_phase, AC_BPT), sends NotifyEVChargingNeeds with
  `AC_BPT`, `controlMode` DynamicControl and `v2xChargingParameters` when a car plugs in,
  and follows a period with `operationMode` CentralSetpoint and a negative `setpoint`
  (within its `dischargeLimit` and `max_discharge_a`): `discharge_w(cid)`,
  `net_power_w(cid)`; meter values then carry a negative Power.Active.Import,
  Power.Active.Export and Energy.Active.Export.Register. `soc_pct=` and `capacity_kwh=`
  model the battery on `clock` (SoC in meter values); at 0 % it stops giving power back by
  itself. A charger that is not bidirectional rejects setpoints, operation modes other than
  ChargingOnly and discharge limits, in profiles and in dynamic updates.
- authorization: `authorize(tag)` and `swipe(tag)` (Authorize, then charging if Accepted;
  offline the local list decides); `authorizations` lists every answer. `local_list=True`:
  LocalAuthListManagement (1.6) / LocalAuthListCtrlr (2.x), SendLocalList and
  GetLocalListVersion kept in `local_list` / `local_list_version`.

Offline and cut off: `disconnect()` (or the server going away) keeps charging on the installed
profiles. `plug_in()`/`unplug()` while offline run locally: the transaction starts at
`start_limit`, its messages wait in `outbox` (1.6 StartTransaction with no id yet — learned
when it is sent; 2.x TransactionEvent with `offline=True`) and are flushed by `start()` (unless
`flush=False`; then `flush()`) or `reconnect()`. 2.1: once offline longer than a profile's `maxOfflineDuration` that profile
stops counting (the charger falls back to lower stack levels and its defaults); with
`invalidAfterOfflineDuration` it is dropped for good at reconnect. `reboot()`: transactions
end (reason Reboot), TxProfiles are lost, TxDefault and maximum profiles persist; it
reconnects, boots, and (`resume=True`) the cars still plugged in start again.
"""

from .charger import VERSIONS, Connector, ReceivedProfile, Session, SimulatedCharger
from .cli import QUIRKS, main, run
from .profiles import InstalledProfile, Limit, Period, ProfileTable

__all__ = [
    "QUIRKS",
    "VERSIONS",
    "Connector",
    "InstalledProfile",
    "Limit",
    "Period",
    "ProfileTable",
    "ReceivedProfile",
    "Session",
    "SimulatedCharger",
    "main",
    "run",
]
