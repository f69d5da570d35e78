"""The shapes of Lineup's answers and requests, shared by the API, the CLI and the pages."""

import json
import math
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

RefusalReason = Literal[
    "no_face", "multiple_faces", "face_too_small", "low_confidence", "unreadable", "too_large"
]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: prose for people, a stable code for programs."""

    detail: str
    code: str


DETAILS_MAX_DEPTH = 32
DETAILS_MAX_BYTES = 64 * 1024


def plain_text(value: str) -> str:
    """`value` if it holds no control character and no surrounding whitespace.

    Names and external ids are shown in pages and matched exactly, so they are
    refused rather than cleaned: a stripped name would silently differ from the
    one sent. (Lone surrogates never get here: pydantic's `str` refuses them.)
    """
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("must not contain control characters (NUL, tab, newline...)")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def _strict_json(details: dict[str, Any]) -> dict[str, Any]:
    """`details` if it is JSON that every database stores and every client reads back.

    Refused: strings (keys or values) with lone surrogates, which are not UTF-8
    and break the row for every later read; NUL characters, which PostgreSQL
    cannot store; NaN and infinities, which are not JSON; nesting deeper than
    DETAILS_MAX_DEPTH and more than DETAILS_MAX_BYTES once serialised.
    """
    pending: list[tuple[Any, int]] = [(details, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list) and depth > DETAILS_MAX_DEPTH:
            raise ValueError(f"nests deeper than {DETAILS_MAX_DEPTH} levels")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_json_string(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError("holds NaN or an infinity, which JSON cannot represent")
    size = len(json.dumps(details, ensure_ascii=False, separators=(",", ":")).encode())
    if size > DETAILS_MAX_BYTES:
        raise ValueError(f"is {size:,} bytes as JSON; at most {DETAILS_MAX_BYTES:,} are kept")
    return details


def _check_json_string(value: str) -> None:
    if "\x00" in value:
        raise ValueError("holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate, which is not valid UTF-8") from None


DisplayName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(plain_text)]
ExternalId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(plain_text)]
Details = Annotated[
    dict[str, Any],
    AfterValidator(_strict_json),
    Field(
        description="Free-form metadata: notes, case numbers, attributes. Strict JSON: valid "
        f"UTF-8 without NUL, nested at most {DETAILS_MAX_DEPTH} deep, at most "
        f"{DETAILS_MAX_BYTES // 1024} KiB serialised."
    ),
]


def in_utc(value: datetime) -> datetime:
    """`value` in UTC; a time that UTC cannot hold (year 9999 east of Greenwich, year 1
    west of it) is refused rather than overflowing where it is stored or compared."""
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("is out of the range of times Lineup stores") from error


UtcInstant = Annotated[AwareDatetime, AfterValidator(in_utc)]
"""A point in time with its zone, kept in UTC."""

RetainUntil = Annotated[
    UtcInstant | None,
    Field(
        description="When the subject is to be deleted completely (photos, faces, chips, index "
        "entries) by the daily purge; with its time zone. `null`: kept until deleted."
    ),
]


class SubjectCreate(BaseModel):
    """A new subject; names and ids are refused, never trimmed, if they carry control
    characters or surrounding whitespace."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName
    external_id: ExternalId | None = None
    details: Details = Field(default_factory=dict)
    retain_until: RetainUntil = None


class SubjectUpdate(BaseModel):
    """A partial update: only the fields sent are changed (`external_id: null` clears it)."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    external_id: ExternalId | None = None
    details: Details | None = None
    retain_until: RetainUntil = None


class SubjectBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str | None
    display_name: str


class SubjectOut(SubjectBrief):
    details: dict[str, Any]
    retain_until: datetime | None
    face_count: int
    created_at: datetime
    updated_at: datetime


class SubjectPage(BaseModel):
    items: list[SubjectOut]
    total: int
    offset: int
    limit: int


class BoxOut(BaseModel):
    """Face rectangle in photo pixels; may reach past the edge for a cut-off face."""

    x1: float
    y1: float
    x2: float
    y2: float


class FaceOut(BaseModel):
    id: int
    subject_id: int
    photo_id: int
    box: BoxOut
    landmarks: list[list[float]]
    detection_probability: float
    quality: float | None
    created_at: datetime


class PhotoOutcome(BaseModel):
    """What happened to one uploaded photo."""

    filename: str
    status: Literal["enrolled", "duplicate", "refused"]
    reason: RefusalReason | None = None
    detail: str | None = None
    face: FaceOut | None = None


class EnrollmentResult(BaseModel):
    subject_id: int
    enrolled: int
    photos: list[PhotoOutcome]


class ModelVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    backbone: str
    weights_hash: str
    embedding_dim: int
    alignment: str
    threshold: float | None


class Candidate(BaseModel):
    rank: int
    subject: SubjectBrief
    similarity: float = Field(description="Cosine similarity of the best-matching gallery face.")
    face_id: int = Field(description="The gallery face that matched best.")
    above_threshold: bool


class ProbeFace(BaseModel):
    box: BoxOut
    landmarks: list[list[float]]
    detection_probability: float
    decision: Literal["match", "no_match", "too_small"] = Field(
        description="`too_small`: the face is under LINEUP_MIN_FACE_SIZE, so it was never "
        "compared with the gallery and has no candidates."
    )
    detail: str | None = Field(default=None, description="Why the face is `too_small`.")
    candidates: list[Candidate]


class ProbeResult(BaseModel):
    """Candidates are investigative leads for a person to review, never an identification."""

    model_version: ModelVersionOut
    threshold: float
    k: int
    faces: list[ProbeFace]


class VerifyResult(BaseModel):
    model_version: ModelVersionOut
    similarity: float
    threshold: float
    same_person: bool


class Stats(BaseModel):
    subjects: int
    photos: int
    faces: int
    model_version: ModelVersionOut
    index_size: int
