"""What a signed acceptance of a dock discrepancy signs (21 CFR 11.70: the signature is linked to its
record): the document (id, reference, the version it stood at) and the discrepancy exactly as QA saw it
(key, kind, detail).  Pure: the store reads the rows, this shapes them, ``cloud/identity/signatures.py``
hashes them with the signature's own manifest (signer, time, meaning, reason).

The same function builds the content when the signature is given and when a page checks it later from
the stored acceptance and the document's version, so both must be given the same values: text and
integers only, so the canonical JSON is the same whichever database the row came from.  The reason is
not here: it is the signature's own (its manifest), and the acceptance's row holds the same text.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ACTION", "MEANING", "RECORD_TYPE", "signed_content"]

#: The signature's record: a document, each acceptance a step of its own (``record_seq``: the
#: acceptance's id), so a signature copied onto another acceptance no longer matches.
RECORD_TYPE = "document"
#: The move signed, telling an acceptance's signature from any other signature of a document.
ACTION = "accept_discrepancy"
#: What the signature means (§11.50(a)(3)).
MEANING = "accepted"


def signed_content(
    document_id: str, reference: str, version: int, *, key: str, kind: str, detail: str
) -> dict[str, Any]:
    """The acceptance's signed content: the document as it stood and the discrepancy accepted."""
    return {
        "type": "discrepancy_acceptance",
        "document": {"id": document_id, "reference": reference, "version": int(version)},
        "discrepancy": {"key": key, "kind": kind, "detail": detail},
    }
