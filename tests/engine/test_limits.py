"""How kW ratings and currents per phase bound each other (nominal, whole amperes)."""

import pytest

from custom_components.smart_charge.engine.limits import (
    charger_fits_rating,
    phase_limit_reachable,
    whole_amperes,
)


@pytest.mark.parametrize(
    ("power_kw", "phases", "amperes"),
    [
        (11.0, 3, 16),  # 15.94 A
        (11.04, 3, 16),  # 15.999999999999998 A in floats
        (22.0, 3, 32),
        (17.0, 1, 74),
        (7.4, 1, 33),
    ],
)
def test_whole_amperes(power_kw: float, phases: int, amperes: int) -> None:
    assert whole_amperes(power_kw, 230.0, phases) == amperes


def test_phase_limit_reachable() -> None:
    # The whole 17 kW on one phase is 74 A at 230 V: a larger limit never binds.
    assert phase_limit_reachable(25, 17.0, 230.0)
    assert phase_limit_reachable(74, 17.0, 230.0)
    assert not phase_limit_reachable(75, 17.0, 230.0)
    assert not phase_limit_reachable(500, 17.0, 230.0)


def test_charger_fits_rating() -> None:
    assert charger_fits_rating(16, 3, 230.0, 11.0)  # "11 kW" is 16 A three-phase
    assert not charger_fits_rating(17, 3, 230.0, 11.0)
    assert not charger_fits_rating(63, 3, 230.0, 17.0)  # 43 kW
    assert charger_fits_rating(63, 1, 230.0, 17.0)  # 14.5 kW
