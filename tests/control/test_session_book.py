"""The session book: one session per connector, in arrival order."""

from __future__ import annotations

from datetime import UTC, datetime

from custom_components.smart_charge.control.sessions import ChargingSession, SessionBook

T0 = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def _session(charger_id: str, connector_id: int, tx: str) -> ChargingSession:
    return ChargingSession(charger_id, connector_id, tx, None, T0)


def test_one_session_per_connector_in_arrival_order() -> None:
    book = SessionBook()
    book.add(_session("CP-1", 1, "a"))
    book.add(_session("CP-2", 1, "b"))
    book.add(_session("CP-1", 2, "c"))
    assert len(book) == 3
    assert [s.transaction_id for s in book] == ["a", "b", "c"]
    # A new transaction on a connector replaces the old one and goes to the back.
    book.add(_session("CP-1", 1, "d"))
    assert len(book) == 3
    assert [s.transaction_id for s in book] == ["b", "c", "d"]
    assert [s.transaction_id for s in book.of_charger("CP-1")] == ["c", "d"]
    first = book.first_of("CP-1")
    assert first is not None
    assert first.transaction_id == "c"
    assert book.first_of("CP-9") is None


def test_removing_a_transaction_only_removes_that_one() -> None:
    book = SessionBook()
    book.add(_session("CP-1", 1, "a"))
    book.add(_session("CP-2", 1, "a"))  # the same id on another charger
    assert book.remove_transaction("CP-1", "zzz") is None  # not known: nothing goes
    assert book.remove_transaction("CP-9", "a") is None
    assert len(book) == 2
    removed = book.remove_transaction("CP-2", "a")
    assert removed is not None
    assert removed.charger_id == "CP-2"
    assert [s.charger_id for s in book] == ["CP-1"]
    assert book.get("CP-2", 1) is None
    assert book.by_key("CP-1#1") is book.get("CP-1", 1)
