"""The websocket server: one connection per charger, typed events to one subscriber."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
import hmac
import itertools
import logging
import ssl
import time
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from .authorization import (
    AuthorizationResult,
    AuthorizationStatus,
    Authorizer,
    LocalListEntry,
    accept_all,
)
from .charge_point import (
    OCPP16,
    OCPP21,
    SUBPROTOCOLS,
    ChargerState,
    CompositeSchedule,
    ConfigurationResult,
    HandlerContext,
    LimitRecord,
    OcppChargePoint,
    RecordingConnection,
    TransactionState,
    VariableResult,
    check_frame,
    profile_limit,
)
from .dynamic import (
    DynamicScheduleProvider,
    DynamicScheduleUpdate,
    no_dynamic_schedules,
)
from .errors import ChargerNotConnectedError, CsmsError
from .events import ChargerConnected, ChargerDisconnected, ChargerEvent
from .v16 import ChargePoint16
from .v201 import ChargePoint21, ChargePoint201

_LOGGER = logging.getLogger(__name__)

_FACTORIES: Final[dict[str, Callable[[Any, HandlerContext], OcppChargePoint]]] = {
    OCPP16: ChargePoint16,
    "2.0.1": ChargePoint201,
    OCPP21: ChargePoint21,
}


class ServerStartError(CsmsError):
    """The server could not listen (port in use, bad address)."""


# Our preference when a charger offers several versions.
_SUBPROTOCOL_PREFERENCE: Final = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")
_REALM: Final = 'Basic realm="Smart Charge OCPP", charset="UTF-8"'
_MAX_LOGGED_KEYS: Final = 10_000


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the central system listens, talks and whom it lets in.

    - `passwords`: Basic auth per identity (OCPP security profile 1 over `ws`, 2 with
      `ssl_context`); an identity with a password must send it, else HTTP 401.
    - `reject_unknown`: refuse (HTTP 404) identities not in `known_ids` and without a
      password; otherwise unknown chargers connect and their events say so.
    - `max_connections`: further connections get HTTP 503 (a reconnect of a connected
      identity is always let in: it replaces the old connection).
    - `max_frame_bytes`: a larger frame closes the connection with 1009.
    """

    host: str = "0.0.0.0"  # noqa: S104 - chargers are on the LAN
    port: int = 9000
    call_timeout_s: float = 10.0
    heartbeat_interval_s: int = 300
    max_frame_bytes: int = 64 * 1024
    ssl_context: ssl.SSLContext | None = None
    passwords: Mapping[str, str] = field(default_factory=dict)
    reject_unknown: bool = False
    known_ids: frozenset[str] | None = None
    max_connections: int = 1000


@dataclass(frozen=True, slots=True)
class _Access:
    passwords: Mapping[str, str]
    known_ids: frozenset[str]
    reject_unknown: bool

    def refusal(
        self, charger_id: str, authorization: str | None
    ) -> tuple[int, str] | None:
        """Return (HTTP status, reason) when the identity may not connect."""
        password = self.passwords.get(charger_id)
        if password is None:
            if self.reject_unknown and charger_id not in self.known_ids:
                return 404, "unknown identity"
            return None
        credentials = basic_credentials(authorization)
        if credentials is None:
            return 401, "no credentials"
        user, given = credentials
        if not (
            hmac.compare_digest(user.encode(), charger_id.encode())
            and hmac.compare_digest(given.encode(), password.encode())
        ):
            return 401, "wrong password"
        return None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """Return (user, password) from an `Authorization: Basic ...` header."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """Pick our preferred OCPP version among those offered.

    None completes the handshake without `Sec-WebSocket-Protocol`; the server then
    closes the connection, as OCPP-J asks for a subprotocol it does not agree to.
    """
    for name in _SUBPROTOCOL_PREFERENCE:
        if name in offered:
            return Subprotocol(name)
    return None


def charger_id_from_path(path: str) -> str | None:
    """Return the charger identity: the last segment of `/<id>` or `/<prefix>/<id>`."""
    segments = [segment for segment in urlsplit(path).path.split("/") if segment]
    return unquote(segments[-1]) if segments else None


@dataclass(slots=True)
class _Connection:
    charge_point: OcppChargePoint
    websocket: ServerConnection
    password: str | None = None


class CentralSystem:
    """An OCPP 1.6J / 2.0.1 / 2.1 central system.

    Events go to `on_event`, a plain callable run in the event loop; it must not block.
    """

    def __init__(
        self,
        config: ServerConfig,
        on_event: Callable[[ChargerEvent], None],
        *,
        authorize: Authorizer = accept_all,
    ) -> None:
        """Prepare the server; nothing listens before `start()`.

        `authorize(charger_id, id_tag)` answers Authorize, StartTransaction and
        TransactionEvent; by default every tag is accepted.
        """
        self.config = config
        self._on_event = on_event
        self._authorizer = authorize
        self._dynamic_provider: DynamicScheduleProvider = no_dynamic_schedules
        self._states: dict[str, ChargerState] = {}
        self._connections: dict[str, _Connection] = {}
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transaction_ids = itertools.count(int(time.time()) % 2**31)
        self._access = _Access(
            dict(config.passwords),
            frozenset(config.known_ids or ()),
            config.reject_unknown,
        )
        self._open = 0
        self._logged: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """Return the port the server is bound to (after `start()`)."""
        if self._server is None:
            raise CsmsError("Server is not running")
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def running(self) -> bool:
        """Return whether the server is listening."""
        return self._server is not None

    @property
    def chargers(self) -> Mapping[str, ChargerState]:
        """Return the state of every charger seen since start, by identity."""
        return MappingProxyType(self._states)

    def connected(self, charger_id: str) -> bool:
        """Return whether a charger is connected now."""
        return charger_id in self._connections

    def ocpp_version(self, charger_id: str) -> str | None:
        """Return the OCPP version a charger last connected with."""
        state = self._states.get(charger_id)
        return state.ocpp_version if state else None

    async def start(self) -> None:
        """Listen for chargers; raises ServerStartError when the port is unavailable."""
        if self._server is not None:
            return
        try:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                select_subprotocol=select_subprotocol,
                process_request=self._process_request,
                max_size=self.config.max_frame_bytes,
                ssl=self.config.ssl_context,
            )
        except OSError as err:
            raise ServerStartError(
                f"Cannot listen on {self.config.host}:{self.config.port}: {err.strerror or err}"
            ) from err
        _LOGGER.info("OCPP server listening on port %s", self.port)

    async def stop(self) -> None:
        """Close every connection, wait for every task, free the port."""
        server, self._server = self._server, None
        if server is not None:
            server.close(close_connections=True)
            await server.wait_closed()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --------------------------------------------------------------- connections

    def update_access(
        self,
        *,
        passwords: Mapping[str, str] | None = None,
        known_ids: frozenset[str] | None = None,
        reject_unknown: bool | None = None,
    ) -> None:
        """Change who may connect, without a restart; None leaves a setting as is.

        Connected chargers that would now be refused, or whose password changed, are
        disconnected (close code 1008) so they authenticate again.
        """
        current = self._access
        self._access = access = _Access(
            dict(passwords) if passwords is not None else current.passwords,
            known_ids if known_ids is not None else current.known_ids,
            reject_unknown if reject_unknown is not None else current.reject_unknown,
        )
        for charger_id, connection in list(self._connections.items()):
            password = access.passwords.get(charger_id)
            refused = password is None and access.refusal(charger_id, None) is not None
            if refused or password != connection.password:
                _LOGGER.warning(
                    "Charger %s: access changed, closing its connection", charger_id
                )
                self._track(connection.websocket.close(1008, "Access changed"))

    def _warn(self, charger_id: str, reason: str, message: str, *args: object) -> None:
        """Log a problem with a charger once as a warning; repeats go to debug."""
        key = (charger_id, reason)
        if key in self._logged:
            _LOGGER.debug(message, *args)
            return
        if len(self._logged) >= _MAX_LOGGED_KEYS:
            self._logged.clear()
        self._logged.add(key)
        _LOGGER.warning(message, *args)

    def _forget_warnings(self, charger_id: str) -> None:
        self._logged = {key for key in self._logged if key[0] != charger_id}

    def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        charger_id = charger_id_from_path(request.path)
        if charger_id is None:
            self._warn(
                "", "no id", "Refused a connection without a charger id in the path"
            )
            return connection.respond(404, "Missing charge point id in path\n")
        if (
            self._open >= self.config.max_connections
            and charger_id not in self._connections
        ):
            self._warn(
                charger_id,
                "busy",
                "Charger %s refused: %s connections open (HTTP 503)",
                charger_id,
                self._open,
            )
            return connection.respond(503, "Too many connections\n")
        refusal = self._access.refusal(charger_id, request.headers.get("Authorization"))
        if refusal is None:
            return None
        status, reason = refusal
        self._warn(
            charger_id,
            reason,
            "Charger %s refused: %s (HTTP %s)",
            charger_id,
            reason,
            status,
        )
        if status == 401:
            response = connection.respond(401, "Authentication required\n")
            response.headers["WWW-Authenticate"] = _REALM
            return response
        return connection.respond(404, "Unknown charge point\n")

    def _track(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, websocket: ServerConnection) -> None:
        self._open += 1
        try:
            await self._handle_open(websocket)
        finally:
            self._open -= 1

    async def _handle_open(self, websocket: ServerConnection) -> None:
        request = websocket.request
        charger_id = charger_id_from_path(request.path if request else "")
        version = SUBPROTOCOLS.get(str(websocket.subprotocol))
        if charger_id is None:  # pragma: no cover - refused in _process_request
            return
        if version is None:
            offered = (
                request.headers.get_all("Sec-WebSocket-Protocol") if request else []
            )
            self._warn(
                charger_id,
                "subprotocol",
                "Charger %s offered no supported OCPP subprotocol (%s); closing",
                charger_id,
                ", ".join(offered) or "none",
            )
            await websocket.close(1002, "Unsupported subprotocol")
            return
        if (
            self._open > self.config.max_connections
            and charger_id not in self._connections
        ):
            # Several handshakes raced past the check in _process_request.
            await websocket.close(1013, "Too many connections")
            return
        self._forget_warnings(charger_id)
        state = self._states.get(charger_id)
        if state is None:
            state = self._states[charger_id] = ChargerState(charger_id)
        context = HandlerContext(
            charger_id=charger_id,
            state=state,
            emit=self._emit,
            next_transaction_id=lambda: next(self._transaction_ids),
            heartbeat_interval_s=self.config.heartbeat_interval_s,
            call_timeout_s=self.config.call_timeout_s,
            authorize=lambda id_tag: self._authorize(charger_id, id_tag),
            dynamic_schedule=lambda profile_id: self._dynamic_schedule(
                charger_id, profile_id
            ),
        )
        charge_point = _FACTORIES[version](
            RecordingConnection(websocket, state), context
        )
        connection = _Connection(
            charge_point, websocket, self._access.passwords.get(charger_id)
        )
        previous = self._connections.get(charger_id)
        self._connections[charger_id] = connection
        if previous is not None:
            _LOGGER.info(
                "Charger %s reconnected; closing its old connection", charger_id
            )
            self._track(previous.websocket.close(1000, "Replaced by a new connection"))
        else:
            _LOGGER.info("Charger %s connected (OCPP %s)", charger_id, version)
        self._emit(ChargerConnected(charger_id, version))
        try:
            await self._serve(charger_id, state, charge_point, context, websocket)
        finally:
            if self._connections.get(charger_id) is connection:
                del self._connections[charger_id]
                _LOGGER.info("Charger %s disconnected", charger_id)
                self._emit(ChargerDisconnected(charger_id))

    async def _serve(
        self,
        charger_id: str,
        state: ChargerState,
        charge_point: OcppChargePoint,
        context: HandlerContext,
        websocket: ServerConnection,
    ) -> None:
        try:
            async for raw in websocket:
                text = raw if isinstance(raw, str) else raw.decode(errors="replace")
                state.recent_frames.append(("in", text))
                await self.handle_frame(
                    charger_id, charge_point, context, text, websocket.send
                )
        except ConnectionClosed as err:
            if err.rcvd is None and err.sent is not None and err.sent.code == 1009:
                self._warn(
                    charger_id,
                    "too big",
                    "Charger %s sent a frame over %s bytes; closed the connection (1009)",
                    charger_id,
                    self.config.max_frame_bytes,
                )

    async def handle_frame(
        self,
        charger_id: str,
        charge_point: OcppChargePoint,
        context: HandlerContext,
        text: str,
        send: Callable[[str], Awaitable[None]],
    ) -> None:
        """Handle one incoming frame: answer bad input ourselves, route the rest."""
        verdict = check_frame(
            text,
            version=charge_point.ocpp_version,
            handled=charge_point.actions,
            known=charge_point.known_actions,
            pending=context.pending_calls,
        )
        if verdict.problem is not None:
            self._warn(
                charger_id,
                verdict.problem,
                "Charger %s sent a bad frame (%s); %s",
                charger_id,
                verdict.problem,
                "answered with a CALLERROR" if verdict.reply else "ignored",
            )
            if verdict.reply is not None:
                context.state.recent_frames.append(("out", verdict.reply))
                await send(verdict.reply)
            return
        try:
            await charge_point.route_message(text)
        except ConnectionClosed:
            raise
        except Exception:
            _LOGGER.exception("Charger %s: failed to handle %s", charger_id, text[:500])

    def set_authorizer(self, authorize: Authorizer) -> None:
        """Replace the authorization hook (connected chargers use it at once)."""
        self._authorizer = authorize

    def _authorize(self, charger_id: str, id_tag: str) -> AuthorizationResult:
        """Ask the owner's hook; a failing hook refuses the tag (and is logged)."""
        try:
            return self._authorizer(charger_id, id_tag)
        except Exception:
            _LOGGER.exception(
                "Charger %s: the authorization hook failed; tag refused", charger_id
            )
            return AuthorizationResult(AuthorizationStatus.INVALID)

    def set_dynamic_schedule_provider(self, provider: DynamicScheduleProvider) -> None:
        """Answer 2.1 PullDynamicScheduleUpdate with `provider` (connected ones too)."""
        self._dynamic_provider = provider

    def _dynamic_schedule(
        self, charger_id: str, profile_id: int
    ) -> DynamicScheduleUpdate | None:
        """Ask the owner's provider; a failing provider answers nothing (logged)."""
        try:
            return self._dynamic_provider(charger_id, profile_id)
        except Exception:
            _LOGGER.exception(
                "Charger %s: the dynamic schedule provider failed; pull rejected",
                charger_id,
            )
            return None

    def _emit(self, event: ChargerEvent) -> None:
        state = self._states.get(event.charger_id)
        if state is not None:
            state.apply(event)
        try:
            self._on_event(event)
        except Exception:
            _LOGGER.exception("Event subscriber failed on %s", event)

    def _charge_point(self, charger_id: str) -> OcppChargePoint:
        connection = self._connections.get(charger_id)
        if connection is None:
            raise ChargerNotConnectedError(charger_id)
        return connection.charge_point

    def restore_transaction(
        self,
        charger_id: str,
        connector_id: int,
        transaction_id: str,
        *,
        id_tag: str | None,
        meter_start_wh: float | None,
        started: datetime,
    ) -> None:
        """Re-create a transaction known from before a restart (persistence)."""
        state = self._states.get(charger_id)
        if state is None:
            state = self._states[charger_id] = ChargerState(charger_id)
        state.transactions[transaction_id] = TransactionState(
            transaction_id, connector_id, id_tag, meter_start_wh, started
        )
        state.connector(connector_id).transaction_id = transaction_id
        if transaction_id.isdigit():
            nxt = next(self._transaction_ids)
            self._transaction_ids = itertools.count(max(nxt, int(transaction_id) + 1))

    # ------------------------------------------------------------- outgoing calls

    async def set_charging_profile(
        self,
        charger_id: str,
        connector_id: int,
        profile: Mapping[str, Any],
        *,
        record_limit: bool = True,
        prebuilt: bool = False,
    ) -> str:
        """Send a camelCase charging profile; return the charger's status.

        The limit is recorded as sent before the call and as acknowledged when the
        charger answers Accepted (unless `record_limit` is False: a failsafe).
        `prebuilt`: the profile comes from the engine's builders, whose output the
        tests check against the OCPP schemas, so the library does not validate it
        again (only the charger's answer is checked).
        """
        charge_point = self._charge_point(charger_id)
        state = self._states[charger_id]
        record = profile_limit(profile) if record_limit else None
        if record is not None:
            state.limit_sent[connector_id] = record
        status = await charge_point.set_charging_profile(
            connector_id, profile, prebuilt=prebuilt
        )
        if record is not None and status == "Accepted":
            state.limit_acked[connector_id] = record
        return status

    async def update_dynamic_schedule(
        self,
        charger_id: str,
        connector_id: int,
        profile_id: int,
        record: LimitRecord,
        *,
        setpoint: float | None = None,
    ) -> str:
        """Move a Dynamic profile's limit (OCPP 2.1); return the charger's status.

        `setpoint` (V2X) moves a CentralSetpoint period's setpoint too (negative:
        discharge, in the profile's unit).

        `record` is the limit as sent (in the profile's unit), recorded like a
        SetChargingProfile's. Other versions raise `NotSupportedByVersionError`.
        """
        charge_point = self._charge_point(charger_id)
        state = self._states[charger_id]
        state.limit_sent[connector_id] = record
        status = await charge_point.update_dynamic_schedule(
            profile_id, record.limit, setpoint=setpoint
        )
        if status == "Accepted":
            state.limit_acked[connector_id] = record
        return status

    async def clear_charging_profile(
        self,
        charger_id: str,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> str:
        """Send ClearChargingProfile; return the status."""
        status = await self._charge_point(charger_id).clear_charging_profile(
            profile_id=profile_id,
            connector_id=connector_id,
            purpose=purpose,
            stack_level=stack_level,
        )
        if status == "Accepted":
            state = self._states[charger_id]
            targets = (
                [connector_id] if connector_id is not None else list(state.limit_acked)
            )
            for target in targets:
                state.limit_sent.pop(target, None)
                state.limit_acked.pop(target, None)
        return status

    async def get_composite_schedule(
        self,
        charger_id: str,
        connector_id: int,
        duration_s: int = 3600,
        rate_unit: str | None = "A",
    ) -> CompositeSchedule:
        """Ask for the schedule the charger actually applies."""
        return await self._charge_point(charger_id).get_composite_schedule(
            connector_id, duration_s, rate_unit
        )

    async def get_configuration(
        self, charger_id: str, keys: list[str] | None = None
    ) -> ConfigurationResult:
        """Read configuration keys (1.6)."""
        return await self._charge_point(charger_id).get_configuration(keys or [])

    async def change_configuration(self, charger_id: str, key: str, value: str) -> str:
        """Change one configuration key (1.6)."""
        return await self._charge_point(charger_id).change_configuration(key, value)

    async def get_variables(
        self, charger_id: str, variables: list[tuple[str, str]]
    ) -> list[VariableResult]:
        """Read (component, variable) pairs (2.x)."""
        return await self._charge_point(charger_id).get_variables(variables)

    async def set_variables(
        self, charger_id: str, variables: list[tuple[str, str, str]]
    ) -> list[VariableResult]:
        """Write (component, variable, value) triples (2.x)."""
        return await self._charge_point(charger_id).set_variables(variables)

    async def trigger_message(
        self, charger_id: str, message: str, connector_id: int | None = None
    ) -> str:
        """Ask the charger to send a message (StatusNotification, MeterValues, ...)."""
        return await self._charge_point(charger_id).trigger_message(
            message, connector_id
        )

    async def remote_start(
        self, charger_id: str, id_tag: str, connector_id: int | None = None
    ) -> str:
        """Start a transaction remotely (RequestStartTransaction in 2.x)."""
        return await self._charge_point(charger_id).remote_start(id_tag, connector_id)

    async def remote_stop(self, charger_id: str, transaction_id: str) -> str:
        """Stop a transaction remotely (RequestStopTransaction in 2.x)."""
        return await self._charge_point(charger_id).remote_stop(transaction_id)

    async def reset(self, charger_id: str, *, hard: bool = False) -> str:
        """Reset the charger."""
        return await self._charge_point(charger_id).reset(hard=hard)

    async def send_local_list(
        self,
        charger_id: str,
        version: int,
        entries: Sequence[LocalListEntry],
        *,
        full: bool = True,
    ) -> str:
        """Send the charger its local authorization list (status: Accepted, ...)."""
        return await self._charge_point(charger_id).send_local_list(
            version, entries, full=full
        )

    async def get_local_list_version(self, charger_id: str) -> int:
        """Return the version of the charger's local authorization list."""
        return await self._charge_point(charger_id).get_local_list_version()

    async def local_list_supported(self, charger_id: str) -> bool:
        """Return whether the charger keeps a local authorization list (enabled)."""
        return await self._charge_point(charger_id).local_list_supported()


__all__ = ["CentralSystem", "ServerConfig", "ServerStartError"]
