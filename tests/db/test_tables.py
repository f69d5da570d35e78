"""The database itself keeps the gallery consistent: cascades and uniqueness."""

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import session_scope
from app.db.tables import Base, Embedding, Face, ModelVersion, Photo, Subject
from app.db.vectors import vector_from_bytes, vector_to_bytes

CHILD_TABLES: tuple[type[Base], ...] = (Photo, Face, Embedding)


def _model_version(*, weights_hash: str = "v1", active: bool = False) -> ModelVersion:
    return ModelVersion(
        backbone="dlib-resnet",
        weights_hash=weights_hash,
        embedding_dim=4,
        alignment="dlib-150",
        active=active,
    )


def _photo(subject: Subject, sha256: str) -> Photo:
    return Photo(
        subject=subject,
        sha256=sha256,
        original_filename=f"{sha256}.jpg",
        stored_path=f"photos/{sha256}.jpg",
        size_bytes=1234,
        width=250,
        height=250,
    )


def _enrolled_subject(model: ModelVersion, *, name: str, photos: int = 2) -> Subject:
    """A subject with `photos` photos, one face each, one embedding per face."""
    subject = Subject(display_name=name, external_id=f"ext-{name}", details={"notes": name})
    for n in range(photos):
        face = Face(
            subject=subject,
            x1=10.0,
            y1=20.0,
            x2=110.0,
            y2=140.0,
            landmarks=[[40.0, 60.0], [80.0, 60.0], [60.0, 80.0], [45.0, 100.0], [75.0, 100.0]],
            detection_probability=0.99,
            chip_path=f"chips/{name}-{n}.png",
        )
        face.embeddings.append(
            Embedding(model_version=model, vector=vector_to_bytes(np.full(4, n, np.float32)))
        )
        _photo(subject, f"{name}{n:02d}".ljust(64, "0")).faces.append(face)
    return subject


def _count(session: Session, table: type[Base]) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


@pytest.fixture
def enrolled(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Two enrolled subjects sharing one model version; their ids by name."""
    with session_scope(sessions) as session:
        model = _model_version(active=True)
        subjects = [_enrolled_subject(model, name=name) for name in ("ada", "bob")]
        session.add_all(subjects)
        session.flush()
        return {subject.display_name: subject.id for subject in subjects}


def test_rows_round_trip(sessions: sessionmaker[Session], enrolled: dict[str, int]) -> None:
    with sessions() as session:
        ada = session.get_one(Subject, enrolled["ada"])
        face = ada.photos[0].faces[0]
        assert ada.details == {"notes": "ada"}
        assert face.box == (10.0, 20.0, 110.0, 140.0)
        assert face.subject_id == ada.id
        assert len(face.landmarks) == 5
        vector = vector_from_bytes(
            face.embeddings[0].vector, face.embeddings[0].model_version.embedding_dim
        )
        assert vector.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_timestamps_are_aware_utc(
    sessions: sessionmaker[Session], enrolled: dict[str, int]
) -> None:
    with session_scope(sessions) as session:
        ada = session.get_one(Subject, enrolled["ada"])
        created, first_update = ada.created_at, ada.updated_at
        ada.details["notes"] = "changed in place"
    with sessions() as session:
        ada = session.get_one(Subject, enrolled["ada"])
        assert ada.created_at.tzinfo is UTC and ada.created_at == created
        assert ada.details["notes"] == "changed in place"
        assert ada.updated_at > first_update


def test_naive_timestamps_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(Exception, match="naive datetime"), session_scope(sessions) as session:
        session.add(Subject(display_name="x", created_at=datetime(2024, 1, 1)))


def test_deleting_a_subject_row_cascades_in_the_database(
    sessions: sessionmaker[Session], enrolled: dict[str, int]
) -> None:
    # A bulk DELETE bypasses the ORM entirely: only real foreign keys can cascade.
    with session_scope(sessions) as session:
        session.execute(delete(Subject).where(Subject.id == enrolled["ada"]))
    with sessions() as session:
        assert [_count(session, table) for table in CHILD_TABLES] == [2, 2, 2]
        remaining = session.scalars(select(Face.subject_id).distinct()).all()
        assert remaining == [enrolled["bob"]]
        assert _count(session, ModelVersion) == 1


def test_deleting_a_subject_through_the_orm_cascades(
    sessions: sessionmaker[Session], enrolled: dict[str, int]
) -> None:
    with session_scope(sessions) as session:
        session.delete(session.get_one(Subject, enrolled["bob"]))
    with sessions() as session:
        assert [_count(session, table) for table in CHILD_TABLES] == [2, 2, 2]


def test_deleting_a_photo_removes_only_its_faces(
    sessions: sessionmaker[Session], enrolled: dict[str, int]
) -> None:
    with session_scope(sessions) as session:
        photo_id = session.scalars(
            select(Photo.id).where(Photo.subject_id == enrolled["ada"])
        ).first()
        session.execute(delete(Photo).where(Photo.id == photo_id))
    with sessions() as session:
        assert [_count(session, table) for table in CHILD_TABLES] == [3, 3, 3]


def test_a_model_version_in_use_cannot_be_deleted(
    sessions: sessionmaker[Session], enrolled: dict[str, int]
) -> None:
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        session.execute(delete(ModelVersion))


def test_external_id_is_unique(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        session.add_all([Subject(display_name="a"), Subject(display_name="b")])  # NULLs don't clash
        session.add(Subject(display_name="c", external_id="emp-1"))
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        session.add(Subject(display_name="d", external_id="emp-1"))


def test_a_photo_is_enrolled_once_per_subject(sessions: sessionmaker[Session]) -> None:
    sha = "ab" * 32
    with session_scope(sessions) as session:
        ada, bob = Subject(display_name="ada"), Subject(display_name="bob")
        session.add_all([_photo(ada, sha), _photo(bob, sha)])
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        session.add(_photo(session.get_one(Subject, ada.id), sha))


def test_only_one_model_version_is_active(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        session.add_all([_model_version(weights_hash=f"old{n}") for n in range(2)])
        session.add(_model_version(weights_hash="current", active=True))
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        session.add(_model_version(weights_hash="next", active=True))


def test_backbone_weights_pair_is_unique(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        session.add(_model_version(weights_hash="same"))
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        session.add(_model_version(weights_hash="same"))


def test_a_face_has_one_embedding_per_model_version(
    sessions: sessionmaker[Session], enrolled: dict[str, int]
) -> None:
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        face = session.scalars(select(Face)).first()
        assert face is not None
        session.add(
            Embedding(
                face_id=face.id,
                model_version_id=face.embeddings[0].model_version_id,
                vector=b"\0" * 16,
            )
        )
