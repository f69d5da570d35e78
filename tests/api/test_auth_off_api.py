"""With LINEUP_AUTH=off every caller on this machine is an admin, and nobody else is served."""

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db.engine import session_scope
from app.db.tables import AuditEvent, Subject
from app.main import create_app
from app.vision.embedder import FaceEmbedder

from access_support import CASE

MODELS = Path(__file__).resolve().parents[2] / "models"


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    return Settings(data_dir=data_dir, models_dir=MODELS, device="cpu", **overrides)


def test_a_loopback_caller_is_an_admin_recorded_as_auth_off(
    tmp_path: Path, embedder: FaceEmbedder
) -> None:
    app = create_app(settings_for(tmp_path, auth="off"), embedder=embedder)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        created = client.post("/subjects", json={"display_name": "Ann"})
        assert created.status_code == 201, created.text
        assert client.get("/admin/keys").status_code == 200  # an admin's page
        with session_scope(app.state.sessions) as session:
            event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event is not None and event.key_name == "auth-off" and event.role == "admin"


def test_a_caller_from_another_address_is_refused_and_nothing_is_stored(
    tmp_path: Path, embedder: FaceEmbedder
) -> None:
    app = create_app(settings_for(tmp_path, auth="off"), embedder=embedder)
    with TestClient(app, client=("10.0.0.5", 50000)) as client:
        for method, path, body in (
            ("GET", "/stats", None),
            ("POST", "/subjects", {"display_name": "Ann"}),
            ("POST", "/probe", None),
        ):
            response = client.request(method, path, json=body, data=CASE if body is None else None)
            assert response.status_code == 403, (path, response.text)
            assert response.json()["code"] == "auth_off_remote"
        with session_scope(app.state.sessions) as session:
            assert session.scalars(select(Subject.id)).all() == []
