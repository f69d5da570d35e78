"""Settings fail early with messages that say how to fix them, and the README lists them all."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_run_on_one_machine() -> None:
    settings = Settings(_env_file=None)
    assert settings.backbone == "dlib-resnet"
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.resolved_database_url.endswith("data/lineup.db")


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEUP_DEFAULT_K", "9")
    monkeypatch.setenv("LINEUP_DATABASE_URL", "postgresql+psycopg://u@h/db")
    settings = Settings()
    assert settings.default_k == 9
    assert settings.resolved_database_url == "postgresql+psycopg://u@h/db"


def test_unknown_backbone_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="LINEUP_BACKBONE must be one of: dlib-resnet"):
        Settings(backbone="resnet-9000")


def test_missing_weights_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LINEUP_FACENET_VGGFACE2_WEIGHTS"):
        Settings(facenet_vggface2_weights=tmp_path / "missing.pt")


@pytest.mark.parametrize(
    ("field", "value"),
    [("match_threshold", 1.5), ("default_k", 0), ("default_k", 101), ("device", "tpu")],
)
def test_out_of_range_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_readme_documents_every_setting() -> None:
    readme = README.read_text()
    for name in Settings.model_fields:
        assert f"`LINEUP_{name.upper()}`" in readme, name


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "lineup.example.org"])
def test_auth_off_is_refused_on_an_address_others_reach(host: str) -> None:
    with pytest.raises(ValidationError, match=f"LINEUP_AUTH=off is refused .* on {host}"):
        Settings(_env_file=None, auth="off", host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.9", "::1", "localhost"])
def test_auth_off_is_accepted_on_loopback(host: str) -> None:
    assert Settings(_env_file=None, auth="off", host=host).auth == "off"
