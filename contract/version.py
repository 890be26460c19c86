"""The one number both ends compare before trusting a payload.

The version appears twice on purpose: in every topic (``coldgate/v1/...``) so
brokers, ACLs and subscriptions can route two versions side by side during a
rollout, and in every payload (``"v": 1``) so a message stays self-describing
once it has left its topic (dead-letter tables, archives, replays).

Any change that an older peer could not decode bumps it: decoders forbid
unknown fields, so even an added optional field is a new version.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta

CONTRACT_VERSION: Final = 1

#: The type of the ``v`` field: a decoder built from it accepts exactly this version.
Version = Annotated[Literal[1], Meta(description="Contract version; a decoder refuses any other.")]
