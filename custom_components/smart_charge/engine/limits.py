"""How breaker ratings in kW and currents per phase in A bound each other.

The configuration forms use these to refuse a tree whose limits contradict each other
(a 40 A panel under a 25 A main, a 500 A current per phase on a 17 kW breaker). Ratings
are nominal: a "16 A three-phase" charger is 11.04 kW and fits an "11 kW" breaker, so
every current derived from a power is rounded up to whole amperes.
"""

from __future__ import annotations

import math

# Float noise (11.04 kW / 690 V = 15.999999999999998 A) must not round a whole ampere up.
_NOISE = 1e-9


def whole_amperes(power_kw: float, voltage_v: float, phases: int = 1) -> int:
    """Return the current per phase of `power_kw` on `phases` phases, rounded up."""
    return math.ceil(power_kw * 1000.0 / (voltage_v * phases) - _NOISE)


def phase_limit_reachable(
    phase_limit_a: float, limit_kw: float, voltage_v: float
) -> bool:
    """Return whether a current per phase can ever bind under a kW rating.

    A phase carries at most the whole rating (everything on that one phase), so a limit
    above `limit_kw / voltage_v` never binds: it is a typo or a unit mix-up.
    """
    return phase_limit_a <= whole_amperes(limit_kw, voltage_v)


def charger_fits_rating(
    current_a: float, phases: int, voltage_v: float, limit_kw: float
) -> bool:
    """Return whether a charger at `current_a` on `phases` phases fits a kW rating."""
    return current_a <= whole_amperes(limit_kw, voltage_v, phases)
