"""Parameters that name a row or a position: ids, offsets and page numbers.

Each is bounded to what a signed 64-bit integer column holds, so no id, offset or
page can overflow the database's integers, and must be written in canonical
decimal, so `+1`, ` 1`, `01`, `1.0` or `0x1` are refused with 422 instead of
quietly naming row 1. The same annotated types serve path, query and form
parameters; FastAPI applies the `BeforeValidator` to the raw string.
"""

import re
from typing import Annotated

from fastapi import Form, Path, Query
from pydantic import BeforeValidator

# Ids are below 2**63: `lt=ID_BOUND` rather than `le=2**63 - 1`, because FastAPI
# writes the bounds of form fields into OpenAPI as floats, and 2**63 is the one that
# a float holds exactly.
ID_BOUND = 2**63
MAX_LIMIT = 200
"""The most items one listing answers; offsets stay this far below the 64-bit bound."""
MAX_OFFSET = ID_BOUND - 1 - MAX_LIMIT

_CANONICAL = re.compile(r"0|[1-9][0-9]{0,18}")


def _canonical_decimal(value: object) -> object:
    """The raw value if it is plain ASCII digits (or not a string); the bounds come after."""
    if isinstance(value, str) and not _CANONICAL.fullmatch(value):
        raise ValueError(
            "must be a plain decimal integer: no sign, spaces, leading zeros, fraction or prefix"
        )
    return value


Canonical = BeforeValidator(_canonical_decimal)

SubjectId = Annotated[int, Path(ge=1, lt=ID_BOUND, description="A subject's id."), Canonical]
FaceId = Annotated[int, Path(ge=1, lt=ID_BOUND, description="An enrolled face's id."), Canonical]
JobId = Annotated[int, Path(ge=1, lt=ID_BOUND, description="A job's id."), Canonical]
FaceIdField = Annotated[
    int | None, Form(ge=1, lt=ID_BOUND, description="An enrolled face's id."), Canonical
]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip."), Canonical]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most items answered.")]


def last_page(page_size: int) -> int:
    """The highest page number whose offset, `(page - 1) * page_size`, is a valid `Offset`."""
    return MAX_OFFSET // page_size + 1
