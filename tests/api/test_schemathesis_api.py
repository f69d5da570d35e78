"""The OpenAPI document tells the truth, and the API lives up to it under fuzzing.

Schemathesis generates requests from `/openapi.json` of a real app behind
uvicorn, on a temporary gallery with three enrolled subjects, valid and
invalid alike, and checks every answer: never a 5xx, and always a documented
status, content type and body shape. The seed is fixed and generation
derandomised, so a failure replays.

`POST /admin/retrain` is left out: a request that passes validation starts
a fine-tuning job that runs for minutes, on any server folder it names
(`tests/api/test_retrain_api.py` covers it). `POST /admin/reindex` stays in:
a generated backbone name is refused at once unless it names a real model,
and a reindex of three faces takes seconds.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.access.keys import create_key
from app.access.roles import Role
from app.audit.actor import SYSTEM
from app.config import Settings
from app.main import create_app
from app.vision.embedder import FaceEmbedder

from access_support import TEST_RATE_LIMITS, bearer
from live_server import serve

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
ENROLLED = ["Monica_Seles", "Heidi_Klum", "Emma_Watson"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZING = schemathesis.Config.from_dict(
    {
        "seed": 20260601,
        "generation": {"mode": "all", "max-examples": 300, "deterministic": True},
        "phases": {"stateful": {"enabled": False}},
    }
)


def openapi_document() -> dict[str, Any]:
    """What `/openapi.json` serves. Making it needs no gallery (the data dir is never
    opened), so it is made at import, where pytest needs it to parametrize the fuzz
    test over its operations; `test_the_served_document_is_the_fuzzed_one` checks
    that the running app serves the same."""
    settings = Settings(data_dir=Path("never-opened"), models_dir=REPO_MODELS, device="cpu")
    return create_app(settings).openapi()


DOCUMENT = openapi_document()
API = schemathesis.openapi.from_dict(DOCUMENT, config=FUZZING).exclude(
    method="POST", path="/admin/retrain"
)


@pytest.fixture(scope="module")
def served(
    embedder: FaceEmbedder, tmp_path_factory: pytest.TempPathFactory, faces_dir: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """A real app behind uvicorn, with one photo enrolled for each of ENROLLED, and the
    header of an admin key, so that the fuzzing reaches every route's own checks."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzzed"),
        models_dir=REPO_MODELS,
        device="cpu",
        rate_limits=TEST_RATE_LIMITS,
    )
    app = create_app(settings, embedder=embedder)
    with serve(app) as (host, port):
        url = f"http://{host}:{port}"
        key = create_key(app.state.sessions, name="fuzzer", role=Role.admin, by=SYSTEM).key
        headers = bearer(key)
        with httpx.Client(base_url=url, headers=headers) as client:
            for name in ENROLLED:
                enroll(client, name, faces_dir / "lfw_mini" / name / f"{name}_0001.jpg")
        yield url, headers


@pytest.fixture(scope="module")
def base_url(served: tuple[str, dict[str, str]]) -> str:
    return served[0]


def enroll(client: httpx.Client, name: str, photo: Path) -> None:
    subject = client.post("/subjects", json={"display_name": name.replace("_", " ")}).json()
    files = [("files", (photo.name, photo.read_bytes(), "image/jpeg"))]
    enrolled = client.post(f"/subjects/{subject['id']}/photos", files=files).json()
    assert enrolled["enrolled"] == 1, enrolled


@pytest.fixture(scope="module")
def openapi(base_url: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{base_url}/openapi.json").json()
    return document


def operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def error_body_of(response: dict[str, Any]) -> str:
    return str(response["content"]["application/json"]["schema"]["$ref"])


def test_no_validation_error_schema_anywhere(openapi: dict[str, Any]) -> None:
    text = json.dumps(openapi)
    assert "HTTPValidationError" not in text
    assert '"ValidationError"' not in text


def test_every_operation_declares_its_errors_as_error_body(openapi: dict[str, Any]) -> None:
    for method, path, operation in operations(openapi):
        responses = operation["responses"]
        for status in ("408", "413", "422", "500"):
            assert status in responses, f"{method} {path} does not declare {status}"
            assert error_body_of(responses[status]) == "#/components/schemas/ErrorBody"
        if path != "/health/live":
            assert "503" in responses, f"{method} {path} does not declare 503 model_not_ready"


def test_every_keyed_operation_declares_the_bearer_scheme_and_its_refusals(
    openapi: dict[str, Any],
) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    public = {("GET", "/health/live"), ("GET", "/health/ready")}
    for method, path, operation in operations(openapi):
        if (method, path) in public:
            assert "security" not in operation, f"{method} {path} is public"
            continue
        assert operation.get("security") == [{"HTTPBearer": []}], f"{method} {path}"
        for status in ("401", "403", "429"):
            assert status in operation["responses"], f"{method} {path} does not declare {status}"


def test_operations_with_ids_in_the_path_declare_404(openapi: dict[str, Any]) -> None:
    with_ids = [(m, p, op) for m, p, op in operations(openapi) if "_id}" in p]
    assert len(with_ids) >= 8
    for method, path, operation in with_ids:
        assert "404" in operation["responses"], f"{method} {path} does not declare 404"
        assert error_body_of(operation["responses"]["404"]) == "#/components/schemas/ErrorBody"


def test_the_served_document_is_the_fuzzed_one(openapi: dict[str, Any]) -> None:
    assert openapi == DOCUMENT


@API.parametrize()
def test_the_api_lives_up_to_its_openapi_document(
    case: schemathesis.Case, served: tuple[str, dict[str, str]]
) -> None:
    base_url, headers = served
    case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)
