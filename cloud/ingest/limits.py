"""What ingest accepts and keeps, as it uses them: ``[ingest]`` of the cloud config."""

from __future__ import annotations

from dataclasses import dataclass, field

from coldgate.cloud.config import IngestConfig
from coldgate.cloud.ingest.dead_letter_budget import Budget

__all__ = ["IngestLimits"]


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """``[ingest]`` of the cloud config, as ingest uses it."""

    window: int = 256
    budget: Budget = field(default_factory=Budget)
    #: Larger messages are cut to a prefix as they arrive and dead-lettered.
    max_message_bytes: int = 1 << 20

    @classmethod
    def from_config(cls, config: IngestConfig) -> IngestLimits:
        budget = Budget(
            window_s=config.dead_letter_window_s,
            rows=config.dead_letters_per_window,
            bytes=config.dead_letter_bytes_per_window,
        )
        return cls(window=config.sequence_window, budget=budget, max_message_bytes=config.max_message_bytes)
