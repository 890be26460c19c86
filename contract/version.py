"""The one number both ends compare before trusting a payload.

The version appears twice on purpose: in every topic (``coldgate/v1/...``) so
brokers, ACLs and subscriptions can route two versions side by side during a
rollout, and in every payload (``"v": 1``) so a message stays self-describing
once it has left its topic (dead-letter tables, archives, replays).

The rule for evolving the contract (docs/contract.md, "Versioning"):

* A change an older peer would misread bumps ``CONTRACT_VERSION``: a field
  removed, renamed or retyped, a new meaning for a field or value, a new item
  kind, a new enum value, a new required field.
* A new *optional* field does not, when its default keeps today's meaning and
  it is encoded only when it differs from the default (``omit_defaults``):
  messages that do not use it are byte for byte what they were, and an older
  peer that receives one that does use it refuses it (decoders forbid unknown
  fields) and says so in its status (``recall_rejected``, ...), never
  misreads it.  Every such field is listed in docs/contract.md
  (``tools/contract_docs_text.py``) with the date it was added.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta

CONTRACT_VERSION: Final = 1

#: The type of the ``v`` field: a decoder built from it accepts exactly this version.
Version = Annotated[Literal[1], Meta(description="Contract version; a decoder refuses any other.")]
