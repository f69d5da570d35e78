"""The shapes of Lineup's answers and requests, shared by the API, the CLI and the pages."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RefusalReason = Literal[
    "no_face", "multiple_faces", "face_too_small", "low_confidence", "unreadable", "too_large"
]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: prose for people, a stable code for programs."""

    detail: str
    code: str


class SubjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=255)
    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    details: dict[str, Any] = Field(
        default_factory=dict, description="Free-form metadata: notes, case numbers, attributes."
    )


class SubjectUpdate(BaseModel):
    """A partial update: only the fields sent are changed (`external_id: null` clears it)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    details: dict[str, Any] | None = None


class SubjectBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    external_id: str | None
    display_name: str


class SubjectOut(SubjectBrief):
    details: dict[str, Any]
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
    decision: Literal["match", "no_match"]
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
