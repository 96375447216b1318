"""The rules behind tags and costs, as plain functions (no server, no hass)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from custom_components.smart_charge.csms import AuthorizationStatus
from custom_components.smart_charge.history import (
    PriceSteps,
    SessionRecord,
    _currency_of,
    _price_of,
)
from custom_components.smart_charge.history_services import ExportPathError, csv_target
from custom_components.smart_charge.tag_config import (
    TagConfig,
    TagPolicy,
    authorize,
    local_list,
    tag_from_data,
)

T0 = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


ALICE = TagConfig(subentry_id="a", name="Alice", id_tag="ALICE-1")
BOB = TagConfig(
    subentry_id="b",
    name="Bob",
    id_tag="BOB-1",
    allowed_chargers=frozenset({"CP-2"}),
    valid_until=date(2030, 1, 31),
)
OLD = TagConfig(subentry_id="o", name="Old", id_tag="OLD", valid_until=date(2020, 1, 1))
TAGS = {t.key: t for t in (ALICE, BOB, OLD)}


@pytest.mark.parametrize(
    ("policy", "charger", "id_tag", "status"),
    [
        (TagPolicy.ACCEPT_ANY, "CP-1", "STRANGER", AuthorizationStatus.ACCEPTED),
        (TagPolicy.KNOWN_ONLY, "CP-1", "STRANGER", AuthorizationStatus.UNKNOWN),
        (TagPolicy.ASK, "CP-1", "STRANGER", AuthorizationStatus.UNKNOWN),
        (TagPolicy.KNOWN_ONLY, "CP-1", " alice-1 ", AuthorizationStatus.ACCEPTED),
        # A known tag follows its own rules under every policy.
        (TagPolicy.ACCEPT_ANY, "CP-1", "BOB-1", AuthorizationStatus.INVALID),
        (TagPolicy.ACCEPT_ANY, "CP-2", "BOB-1", AuthorizationStatus.ACCEPTED),
        (TagPolicy.ACCEPT_ANY, "CP-1", "OLD", AuthorizationStatus.EXPIRED),
    ],
)
def test_authorize(
    policy: TagPolicy, charger: str, id_tag: str, status: AuthorizationStatus
) -> None:
    assert authorize(TAGS, policy, charger, id_tag, T0).status is status


def test_expiry_is_the_end_of_the_last_day() -> None:
    result = authorize(TAGS, TagPolicy.KNOWN_ONLY, "CP-2", "BOB-1", T0)
    assert result.expiry is not None
    assert result.expiry > datetime(2030, 1, 31, 12, tzinfo=UTC)
    assert result.expiry <= datetime(2030, 2, 2, tzinfo=UTC)
    assert authorize(TAGS, TagPolicy.KNOWN_ONLY, "CP-1", "ALICE-1", T0).expiry is None


def test_local_list_per_charger() -> None:
    entries = local_list(TAGS.values(), "CP-1", T0)
    assert [(e.id_tag, e.status) for e in entries] == [
        ("ALICE-1", AuthorizationStatus.ACCEPTED),
        ("BOB-1", AuthorizationStatus.INVALID),
        ("OLD", AuthorizationStatus.EXPIRED),
    ]
    bob = local_list([BOB], "CP-2", T0)[0]
    assert bob.status is AuthorizationStatus.ACCEPTED
    assert bob.expiry == BOB.expiry()


def test_tag_from_data() -> None:
    tag = tag_from_data(
        "s1",
        {
            "name": "Van",
            "id_tag": "V-1",
            "person": "",
            "allowed_chargers": ["CP-1"],
            "priority": 5,
            "valid_until": "2030-12-31",
        },
    )
    assert tag.person is None
    assert tag.allowed_chargers == {"CP-1"}
    assert tag.priority == 5
    assert tag.valid_until == date(2030, 12, 31)


def test_price_steps_time_weighted() -> None:
    steps = PriceSteps()
    steps.add(_at(60), 0.20)
    steps.add(_at(0), 0.30)  # out of order: kept sorted
    assert steps.at(_at(-30)) == 0.30  # before the first step: the first price
    assert steps.average(_at(45), _at(75)) == pytest.approx(0.25)
    assert steps.average(_at(60), _at(90)) == pytest.approx(0.20)
    assert steps.average(_at(90), _at(90)) == pytest.approx(0.20)
    steps.add(_at(120), None)  # the sensor went unavailable
    assert steps.average(_at(100), _at(130)) is None
    steps.prune(_at(70))
    assert steps.times == [_at(60), _at(120)]


def test_session_cost_and_unpriced_energy() -> None:
    steps = PriceSteps()
    steps.add(_at(0), 0.30)
    steps.add(_at(60), 0.20)
    steps.add(_at(90), None)
    record = SessionRecord(
        charger_id="CP-1",
        connector_id=1,
        transaction_id="1",
        id_tag="A",
        tag_name=None,
        person=None,
        started=_at(30),
    )
    record.add_reading(_at(30), 1000, steps)
    record.add_reading(_at(45), 3000, steps)  # 2 kWh x 0.30
    record.add_reading(_at(75), 6000, steps)  # 3 kWh x 0.25
    record.add_reading(_at(100), 7000, steps)  # unknown price for part: unpriced
    record.add_reading(_at(110), 6500, steps)  # a meter that went back: no energy
    assert record.cost == pytest.approx(1.35)
    assert record.unpriced_wh == 1000
    assert record.energy_wh == 5500
    again = SessionRecord.from_dict(record.as_dict())
    assert again == record


@pytest.mark.parametrize(
    ("state", "unit", "price", "currency"),
    [
        ("0.25", "EUR/kWh", 0.25, "EUR"),
        ("250", "EUR/MWh", 0.25, "EUR"),
        ("0.00025", "€/Wh", 0.25, "€"),
        ("0.25", None, 0.25, None),
        ("unavailable", "EUR/kWh", None, "EUR"),
        ("cheap", "EUR/kWh", None, "EUR"),
    ],
)
def test_price_units(
    state: str, unit: str | None, price: float | None, currency: str | None
) -> None:
    assert _price_of(state, unit) == (None if price is None else pytest.approx(price))
    assert _currency_of(unit) == currency


@pytest.mark.parametrize(
    "raw", ["../x.csv", "/etc/x.csv", "a/../../x.csv", "x.txt", "", "sub/"]
)
def test_csv_path_must_stay_inside(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ExportPathError):
        csv_target(str(tmp_path), raw)


def test_csv_path_inside(tmp_path: Path) -> None:
    assert (
        csv_target(str(tmp_path), "exports/nov.CSV") == tmp_path / "exports" / "nov.CSV"
    )


def test_solar_share_from_the_grid_meter() -> None:
    """The car draws 4 kW; the grid imports 1 kW, then exports: 3/4, then all solar.

    08:00-08:30 2 kWh with 1000 W import: 1.5 kWh solar; 08:30-09:00 2 kWh with
    -2000 W (export): 2 kWh solar. Share 3.5 / 4 = 0.875.
    """
    grid = PriceSteps()
    grid.add(_at(0), 1000.0)
    grid.add(_at(30), -2000.0)
    record = SessionRecord(
        charger_id="CP-1",
        connector_id=1,
        transaction_id="1",
        id_tag=None,
        tag_name=None,
        person=None,
        started=_at(0),
        solar_wh=0.0,
    )
    record.add_reading(_at(0), 0, None, grid)
    record.add_reading(_at(30), 2000, None, grid)
    record.add_reading(_at(60), 4000, None, grid)
    assert record.solar_wh == pytest.approx(3500)
    assert record.export()["solar_share"] == 0.875
    assert record.cost is None  # no price sensor
    # A grid that imports more than the car draws: nothing from the sun.
    busy = PriceSteps()
    busy.add(_at(0), 9000.0)
    record.add_reading(_at(90), 6000, None, busy)
    assert record.solar_wh == pytest.approx(3500)
