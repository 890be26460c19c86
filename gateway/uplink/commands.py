"""Operator commands from the cloud: the uplink's own (``resend_from``, ``ping``) and the app's.

Commands arrive with QoS 1, so the same one may come twice (a reconnect
before the PUBACK); the ``command_id`` is remembered and a repeat ignored, or
an operator's "silence" could be taken twice.  What the uplink does itself
is recorded as a ``command_done`` event with the ``command_id``, the way the
app records the alarm commands it handles (``gateway.app.handle_command``),
so the cloud sees every outcome in the audit trail.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from coldgate.contract.codec import decode
from coldgate.contract.downlink import Command, CommandAction
from coldgate.contract.errors import ContractError
from coldgate.contract.items import Event, EventType
from coldgate.gateway.clock import Clock
from coldgate.gateway.observations import Sink, stamp_fields
from coldgate.gateway.status import StatusErrors
from coldgate.gateway.uplink.mqtt_link import Message

log = logging.getLogger("coldgate.gateway.uplink.drain")


class CommandDesk:
    """Takes commands off the command topic and sends each where it belongs."""

    def __init__(
        self,
        *,
        sink: Sink,
        clock: Clock,
        errors: StatusErrors,
        resend_from: Callable[[int], None],
        ping: Callable[[], None],
        on_command: Callable[[Command], None] | None,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.errors = errors
        self.resend_from = resend_from
        self.ping = ping
        self.on_command = on_command
        self._seen: deque[str] = deque(maxlen=256)

    def handle(self, message: Message) -> None:
        try:
            command = decode(message.payload, Command, message.topic)
        except ContractError as exc:
            log.error("command refused: %s", exc)
            self.errors.add("command_invalid", str(exc), self.clock.stamp().wall_ms)
            return
        if command.command_id in self._seen:
            return
        self._seen.append(command.command_id)
        if command.action is CommandAction.RESEND_FROM:
            seq = int(command.args["seq"])
            self.resend_from(seq)
            self._outcome(command, EventType.COMMAND_DONE, f"sending again from seq {seq}")
        elif command.action is CommandAction.PING:
            self.ping()
            self._outcome(command, EventType.COMMAND_DONE, "status published")
        elif self.on_command is None:
            self._outcome(command, EventType.COMMAND_FAILED, f"{command.action} is not handled here")
        else:
            try:
                self.on_command(command)
            except Exception as exc:
                log.exception("command %s failed", command.command_id)
                self._outcome(command, EventType.COMMAND_FAILED, str(exc)[:1000])

    def _outcome(self, command: Command, outcome: EventType, detail: str) -> None:
        data = {"command_id": command.command_id, "action": str(command.action), "by": command.by}
        try:
            self.sink.put(Event(**stamp_fields(self.clock.stamp()), event=outcome, detail=detail, data=data))  # type: ignore[arg-type]
        except Exception:
            log.exception("could not record the outcome of command %s", command.command_id)
