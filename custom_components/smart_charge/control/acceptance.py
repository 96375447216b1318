"""Learning what a car accepts from its meter values (A per phase).

A car drawing at least `EV_GAP_A` below its limit for `EV_SAMPLES` meter values in a row
is capped at what it draws plus `EV_HEADROOM_A`, so the rest goes to other cars. The cap
is dropped (the car may take more again) when the car uses all of it, and every
`EV_RELEARN_S` seconds.
"""

from __future__ import annotations

import logging
from typing import Final

from .sessions import ChargingSession

_LOGGER = logging.getLogger(__name__)

EV_GAP_A: Final = 2.0  # drawing this much below its limit ...
EV_SAMPLES: Final = 3  # ... in this many meter values in a row ...
EV_HEADROOM_A: Final = 1.0  # ... caps it at what it draws plus this,
EV_FULL_A: Final = 0.5  # until it uses its cap to within this,
EV_CHARGING_A: Final = 1.0  # (a car below this is not charging: nothing learned)
EV_RELEARN_S: Final = 900.0  # or this long has passed.


def learn_acceptance(
    session: ChargingSession,
    *,
    drawn_a: float,
    limit_a: float | None,
    min_current_a: float,
    now: float,
) -> bool:
    """Update what the session's car accepts; return whether to rebalance.

    `drawn_a` is the highest phase current of the last meter values, `limit_a` the
    limit in force on the charger (None: not known yet), `now` a monotonic time.
    """
    if session.ev_max_a is not None and (
        now - session.ev_learned_at >= EV_RELEARN_S
        or drawn_a >= session.ev_max_a - EV_FULL_A
    ):
        session.ev_max_a, session.below_count = None, 0
        return True
    if limit_a is None or drawn_a < EV_CHARGING_A or limit_a - drawn_a < EV_GAP_A:
        session.below_count = 0
        return False
    session.below_count += 1
    if session.below_count < EV_SAMPLES or session.ev_max_a is not None:
        return False
    session.ev_max_a = max(min_current_a, round(drawn_a + EV_HEADROOM_A, 1))
    session.ev_learned_at = now
    _LOGGER.info(
        "%s connector %s: the car takes about %.1f A, capping it at %.1f A",
        session.charger_id,
        session.connector_id,
        drawn_a,
        session.ev_max_a,
    )
    return True


__all__ = [
    "EV_CHARGING_A",
    "EV_FULL_A",
    "EV_GAP_A",
    "EV_HEADROOM_A",
    "EV_RELEARN_S",
    "EV_SAMPLES",
    "learn_acceptance",
]
