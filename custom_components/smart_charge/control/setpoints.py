"""V2X setpoints of a rebalance: computed from the book, answered to pulls, checked.

`DischargeController` (discharge.py) decides who may give power back; `V2XSetpoints`
holds the setpoints of the current round, reads what each session's TxProfile holds
from the writer's book (an unanswered write holds no acknowledged limit), answers a
2.1 PullDynamicScheduleUpdate from the book and notices a charger that refused one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from custom_components.smart_charge.csms.dynamic import DynamicScheduleUpdate
from custom_components.smart_charge.engine import TX_PROFILE, Site, profile_id_for

from .config import ChargerConfig
from .discharge import DischargeController
from .sessions import ChargingSession
from .writer import SLOT_TX, ChargerBook, ProfileWriter, WriteTarget


class V2XSetpoints:
    """The setpoints (W, <= 0) of the sessions that discharge this round."""

    def __init__(self, discharge: DischargeController, writer: ProfileWriter) -> None:
        """Ask `discharge` for the setpoints; read what is installed from `writer`."""
        self.discharge = discharge
        self.writer = writer
        self.active: dict[str, float] = {}

    def plan(
        self,
        site: Site,
        sessions: Iterable[ChargingSession],
        chargers: Mapping[str, ChargerConfig],
        *,
        voltage_v: Callable[[ChargerConfig], float],
    ) -> bool:
        """Compute this round's setpoints; return whether a follow-up round is due.

        A discharge goes out once its limit 0 is acknowledged: a round after this one.
        """
        self.active, follow_up = self.discharge.setpoints(
            site, sessions, chargers, voltage_v=voltage_v, installed=self._installed
        )
        return follow_up

    def _installed(self, session: ChargingSession) -> tuple[float | None, float | None]:
        """Return (acknowledged limit A, setpoint W) of a session's TxProfile."""
        tx = self.writer.book(session.charger_id).slots.get(
            (session.connector_id, SLOT_TX)
        )
        if tx is None or tx.transaction_id != session.transaction_id:
            return None, None
        if tx.pending_a is not None:
            return None, tx.setpoint_w
        return tx.limit_a, tx.setpoint_w

    def refused(self, session: ChargingSession, target: WriteTarget) -> bool:
        """After a setpoint write: return whether the charger refused it.

        Only an answer refuses: a write left unanswered (timed out, the charger gone)
        stays pending in the book and is retried. A refusal stops setpoints to that
        charger (it only charges from now on).
        """
        tx = self.writer.book(session.charger_id).slots.get(
            (session.connector_id, SLOT_TX)
        )
        if tx is None or (tx.pending_a is None and tx.setpoint_w != target.setpoint_w):
            self.discharge.refused(session.charger_id)
            return True
        return False

    def dynamic_schedule(
        self, book: ChargerBook, profile_id: int, volts: float
    ) -> DynamicScheduleUpdate | None:
        """Answer a 2.1 PullDynamicScheduleUpdate from the book (None: not ours).

        The limit the charger holds by our last acknowledged write, or the lower of it
        and a write still unanswered: a pull never raises a limit out of turn.
        `book`: the charger's installed profiles; `volts`: its voltage times its phases.
        """
        for (connector_id, slot), installed in book.slots.items():
            if (
                slot != SLOT_TX
                or installed.dynamic_unit is None
                or profile_id_for(TX_PROFILE, connector_id) != profile_id
            ):
                continue
            limit = installed.limit_a
            if limit is not None and installed.pending_a is not None:
                limit = min(limit, installed.pending_a)
            return self.discharge.update_for(
                limit, installed.setpoint_w, installed.dynamic_unit, volts
            )
        return None


__all__ = ["V2XSetpoints"]
