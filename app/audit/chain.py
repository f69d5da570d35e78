"""The hash chain over audit records: what a record's hash covers, computed one way.

A record's hash is the SHA-256 of its fields and the previous record's hash,
written as canonical JSON (sorted keys, no spaces, UTF-8). Changing any field
of any record, removing one or slipping one in changes a hash that the next
record, or the head row, still holds, so `app.audit.verify` finds it.
"""

import hashlib
import json
from typing import Any

GENESIS = "0" * 64
"""What the first record chains from."""

HASHED_FIELDS = (
    "id",
    "at",
    "key_name",
    "role",
    "client",
    "request_id",
    "action",
    "outcome",
    "case_reference",
    "purpose",
    "model_version_id",
    "subject_ids",
    "details",
)


def canonical_json(value: Any) -> str:
    """`value` as the one JSON text it always has: the form details are stored and hashed in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(fields: dict[str, Any], prev_hash: str) -> str:
    """The hash of a record with these `fields` (every name in HASHED_FIELDS) after `prev_hash`."""
    covered = {name: fields[name] for name in HASHED_FIELDS}
    text = canonical_json({"prev": prev_hash, "record": covered})
    return hashlib.sha256(text.encode()).hexdigest()
