"""The gateway app's entry point to the rules: every sensor of one site, judged reading by reading.

::

    rules = SiteRules.from_config(config)            # or from_config(config, snapshot=saved)
    verdict = rules.judge(reading)                   # a contract Reading with seq = 0
    if verdict.record: outbox.put(verdict.reading)   # the reading as it must be recorded
    for alert in verdict.alerts: outbox.put(alert); local_alarm.consider(alert)
    status: rules.mkt("cr1-back"), rules.in_excursion("cr1-back")

Call ``judge`` once per reading, in each sensor's order of observation, and
record ``verdict.reading`` (not the original: it may have been downgraded to
suspect) before or with its alerts.  ``SiteRules`` holds only plain state
(``snapshot()``); everything it does is ``gateway.rules.engine.step``.

A reading is matched to its configured sensor by id; a sensor whose profile
has several points of one quantity may publish them as ``<sensor>.<point>``
(``frz1-probes.air``), which is matched to ``frz1-probes`` and judged as its
own stream.  Sensors without a zone, and sensors the configuration does not
know, get the sensor-fault rules only.  Quantities other than temperature and
humidity pass through unjudged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from coldgate.contract.items import Reading
from coldgate.contract.units import Quantity
from coldgate.gateway.rules import engine
from coldgate.gateway.rules.engine import SensorState, Verdict
from coldgate.gateway.rules.params import JUDGED, SensorParams, params_from_config

if TYPE_CHECKING:
    from coldgate.gateway.config import GatewayConfig

ParamsFor = Callable[[str, Quantity], SensorParams | None]


def stream_key(sensor: str, quantity: Quantity | str) -> str:
    """Key of one sensor's quantity in ``snapshot()``: ``<sensor>/<quantity>``."""
    return f"{sensor}/{quantity}"


class SiteRules:
    """Per-sensor rule state for one gateway, with ``judge`` as the only way to change it."""

    def __init__(self, params_for: ParamsFor, snapshot: Mapping[str, SensorState] | None = None) -> None:
        self._params_for = params_for
        self._params: dict[str, SensorParams | None] = {}
        self._states: dict[str, SensorState] = dict(snapshot or {})
        # (sensor, quantity) as a reading carries them -> its stream key and parameters: ``judge`` runs
        # for every reading (1,000/s at a busy site), so it looks both up with one tuple (issue 18).
        self._streams: dict[tuple[str, str], tuple[str, SensorParams | None]] = {}

    @classmethod
    def from_config(
        cls, config: GatewayConfig, snapshot: Mapping[str, SensorState] | None = None
    ) -> SiteRules:
        sources = {src.id: src for src in config.sensors}

        def params_for(sensor: str, quantity: Quantity) -> SensorParams | None:
            src = sources.get(sensor)
            if src is None and "." in sensor:
                src = sources.get(sensor.rsplit(".", 1)[0])
            zone = tclass = None
            if src is not None and src.zone is not None:
                zone = config.get_zone(src.zone)
                tclass = config.get_temperature_class(zone.temperature_class)
            interval = src.interval_s if src is not None else 60.0
            return params_from_config(tclass, zone, quantity, interval)

        return cls(params_for, snapshot)

    def params(self, sensor: str, quantity: Quantity | str) -> SensorParams | None:
        """The parameters that judge ``sensor``'s ``quantity``; None when it is not judged."""
        quantity = Quantity(quantity)
        key = stream_key(sensor, quantity)
        if key not in self._params:
            self._params[key] = self._params_for(sensor, quantity) if quantity in JUDGED else None
        return self._params[key]

    def judge(self, reading: Reading) -> Verdict:
        """Judge one reading; the verdict says what to record and which alerts to send."""
        stream = self._streams.get((reading.sensor, reading.quantity))
        if stream is None:
            stream = self._stream(reading.sensor, reading.quantity)
        key, sp = stream
        if sp is None:
            return Verdict(reading=reading)
        state = self._states.get(key)
        state, verdict = engine.step(sp, SensorState() if state is None else state, reading)
        self._states[key] = state
        return verdict

    def _stream(self, sensor: str, quantity: Quantity | str) -> tuple[str, SensorParams | None]:
        stream = (stream_key(sensor, Quantity(quantity)), self.params(sensor, quantity))
        self._streams[sensor, quantity] = stream
        return stream

    def mkt(self, sensor: str, quantity: Quantity | str = Quantity.TEMPERATURE) -> float | None:
        """Rolling MKT (°C) over the class's ``mkt_window_s``; None before data or without a zone."""
        sp = self.params(sensor, quantity)
        state = self._states.get(stream_key(sensor, Quantity(quantity)))
        return None if sp is None or state is None else engine.current_mkt(sp, state)

    def in_excursion(self, sensor: str) -> bool:
        """True while a quantity of ``sensor`` (or of one of its points, ``<sensor>.<point>``) is
        beyond an alarm limit, until back inside by the hysteresis."""
        for key, state in self._states.items():
            stream, _, quantity = key.rpartition("/")
            if stream != sensor and not stream.startswith(f"{sensor}."):
                continue
            sp = self.params(stream, quantity)
            if sp is not None and engine.in_excursion(sp, state):
                return True
        return False

    def snapshot(self) -> dict[str, SensorState]:
        """All state, keyed by ``stream_key``: persist it to resume open alerts after a restart."""
        return dict(self._states)
