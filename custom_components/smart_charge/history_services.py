"""The `smart_charge.export_sessions` service: the session history as data and CSV."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import DOMAIN
from .coordinator import SmartChargeConfigEntry
from .history import EXPORT_FIELDS

SERVICE_EXPORT_SESSIONS: Final = "export_sessions"
ATTR_START: Final = "start"
ATTR_END: Final = "end"
ATTR_CSV_PATH: Final = "csv_path"
CSV_FIELDS: Final = ("site", *EXPORT_FIELDS)

EXPORT_SCHEMA = vol.Schema(
    {
        **cv.TARGET_SERVICE_FIELDS,
        vol.Optional(ATTR_START): cv.datetime,
        vol.Optional(ATTR_END): cv.datetime,
        vol.Optional(ATTR_CSV_PATH): cv.string,
    }
)


class ExportPathError(Exception):
    """The CSV path leaves the config folder or is not a .csv file."""


@dataclass
class _Filter:
    """Which sites, chargers and tags to export (None: all)."""

    entries: list[SmartChargeConfigEntry]
    chargers: dict[str, set[str]]  # entry id -> charger ids
    tags: dict[str, set[str]]  # entry id -> id tags


def _aware(moment: datetime | None) -> datetime | None:
    """Read a naive time as local time (what the UI sends)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_util.get_default_time_zone())
    return dt_util.as_utc(moment)


def _loaded_entries(hass: HomeAssistant) -> list[SmartChargeConfigEntry]:
    return [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
    ]


def _filter(hass: HomeAssistant, call: ServiceCall) -> _Filter:
    """Resolve the targeted charger and tag devices; no target exports everything."""
    device_ids: set[str] = set(cv.ensure_list(call.data.get("device_id")))
    ent_reg = er.async_get(hass)
    for entity_id in cv.ensure_list(call.data.get("entity_id")):
        if (entity := ent_reg.async_get(entity_id)) and entity.device_id:
            device_ids.add(entity.device_id)
    entries = _loaded_entries(hass)
    if not device_ids:
        return _Filter(entries, {}, {})
    by_id = {entry.entry_id: entry for entry in entries}
    chargers: dict[str, set[str]] = {}
    tags: dict[str, set[str]] = {}
    dev_reg = dr.async_get(hass)
    for device_id in sorted(device_ids):
        device = dev_reg.async_get(device_id)
        found = False
        for domain, identifier in device.identifiers if device else ():
            entry_id, _, rest = identifier.partition("_")
            entry = by_id.get(entry_id)
            kind, _, key = rest.partition("_")
            if domain != DOMAIN or entry is None:
                continue
            if kind == "charger":
                chargers.setdefault(entry_id, set()).add(key)
                found = True
            elif kind == "tag":
                tag = next(
                    (
                        t
                        for t in entry.runtime_data.tags.tags.values()
                        if t.subentry_id == key
                    ),
                    None,
                )
                if tag is not None:
                    tags.setdefault(entry_id, set()).add(tag.id_tag)
                    found = True
        if not found:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_a_charger_or_tag",
                translation_placeholders={
                    "target": (device.name if device else None) or device_id
                },
            )
    selected = [e for e in entries if e.entry_id in chargers or e.entry_id in tags]
    return _Filter(selected, chargers, tags)


def csv_target(config_dir: str, raw: str) -> Path:
    """Return where to write a CSV: inside the config folder, a `.csv` file (blocking)."""
    base = Path(config_dir).resolve()
    target = (base / raw.strip()).resolve()
    if base not in target.parents or target.suffix.lower() != ".csv":
        raise ExportPathError(raw)
    return target


def write_csv(config_dir: str, raw: str, rows: list[dict[str, Any]]) -> str:
    """Write the rows as CSV (blocking: run in the executor); return the file path."""
    target = csv_target(config_dir, raw)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {key: "" if row[key] is None else row[key] for key in CSV_FIELDS}
            )
    return str(target)


async def _export_sessions(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    start, end = _aware(call.data.get(ATTR_START)), _aware(call.data.get(ATTR_END))
    if start is not None and end is not None and start >= end:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="export_period_invalid"
        )
    selection = _filter(hass, call)
    rows: list[dict[str, Any]] = []
    for entry in selection.entries:
        charger_ids = selection.chargers.get(entry.entry_id)
        id_tags = selection.tags.get(entry.entry_id)
        rows.extend(
            {"site": entry.title, **record.export()}
            for record in entry.runtime_data.history.query(
                start=start, end=end, chargers=charger_ids, id_tags=id_tags
            )
        )
    rows.sort(key=lambda row: str(row["started"]))
    response: dict[str, Any] = {
        "sessions": rows,
        "count": len(rows),
        "energy_kwh": round(sum(row["energy_kwh"] for row in rows), 3),
        "cost": round(sum(row["cost"] or 0.0 for row in rows), 4),
    }
    if raw := call.data.get(ATTR_CSV_PATH):
        try:
            response["csv_path"] = await hass.async_add_executor_job(
                write_csv, hass.config.config_dir, raw, rows
            )
        except ExportPathError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="export_path_invalid",
                translation_placeholders={"path": raw},
            ) from err
        except OSError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="export_failed",
                translation_placeholders={"path": raw, "error": str(err)},
            ) from err
    return response


@callback
def async_setup_history_services(hass: HomeAssistant) -> None:
    """Register the export service."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_EXPORT_SESSIONS,
        partial(_export_sessions, hass),
        schema=EXPORT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
