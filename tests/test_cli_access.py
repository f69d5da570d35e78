"""`lineup keys`, `lineup audit`, `lineup purge` and the first start's admin key, as real
processes."""

import csv
import io
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx

from app.access.keys import NotAuthenticated, authenticate
from app.composition import open_database, open_lineup
from app.config import Settings
from app.db.engine import make_session_factory
from app.db.types import utc_now
from app.schemas import SubjectCreate
from app.vision.embedder import FaceEmbedder

from access_support import BY
from lineup_processes import LINEUP, REPO, lineup_env, run_cli, wait_for


def is_valid(data_dir: Path, key: str) -> bool:
    engine = open_database(Settings(data_dir=data_dir))
    try:
        authenticate(make_session_factory(engine), key)
        return True
    except NotAuthenticated:
        return False
    finally:
        engine.dispose()


def test_a_key_is_printed_once_last_listed_without_its_secret_and_revoked(tmp_path: Path) -> None:
    env = lineup_env(tmp_path / "fresh")
    made = run_cli(env, "keys", "create", "--name", "j.doe", "--role", "investigator")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("lk_") and len(key) == 55 and is_valid(tmp_path / "fresh", key)

    listed = run_cli(env, "keys", "list")
    assert "j.doe" in listed.stdout and "investigator" in listed.stdout
    assert key not in listed.stdout and key[12:] not in listed.stdout

    assert run_cli(env, "keys", "revoke", "j.doe").returncode == 0
    assert not is_valid(tmp_path / "fresh", key)
    unknown = run_cli(env, "keys", "revoke", "nobody")
    assert unknown.returncode == 2 and "no key named 'nobody'" in unknown.stderr
    taken = run_cli(env, "keys", "create", "--name", "j.doe", "--role", "viewer")
    assert taken.returncode == 2 and "exists" in taken.stderr


def test_audit_verify_finds_a_changed_record(tmp_path: Path) -> None:
    env = lineup_env(tmp_path / "data")
    for name in ("first", "second", "third"):
        run_cli(env, "keys", "create", "--name", name, "--role", "viewer")
    intact = run_cli(env, "audit", "verify")
    assert intact.returncode == 0 and "intact: 3 records" in intact.stdout, intact.stdout
    with sqlite3.connect(tmp_path / "data" / "lineup.db") as db:
        db.execute("UPDATE audit_events SET client = 'elsewhere' WHERE id = 2")
    broken = run_cli(env, "audit", "verify")
    assert broken.returncode == 1
    assert "NOT intact: record 2" in broken.stderr


def test_purge_deletes_what_expired_and_the_export_names_it(
    tmp_path: Path, embedder: FaceEmbedder
) -> None:
    data = tmp_path / "data"
    env = lineup_env(data)
    lineup = open_lineup(Settings(data_dir=data, models_dir=REPO / "models"), embedder=embedder)
    try:
        past, future = utc_now() - timedelta(hours=1), utc_now() + timedelta(days=1)
        create = lineup.gallery.create_subject
        expired = create(SubjectCreate(display_name="Expired", retain_until=past), by=BY).id
        create(SubjectCreate(display_name="Kept", retain_until=future), by=BY)
    finally:
        lineup.close()

    purged = run_cli(env, "purge")
    assert purged.returncode == 0, purged.stderr
    assert f"purged 1 expired subjects [{expired}]" in purged.stdout
    again = run_cli(env, "purge")
    assert "purged 0 expired subjects" in again.stdout, again.stdout
    with sqlite3.connect(data / "lineup.db") as db:
        names = db.execute("SELECT display_name FROM subjects").fetchall()
    assert names == [("Kept",)]

    export = run_cli(env, "audit", "export", "--csv", "-", "--subject", str(expired))
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert [row["action"] for row in rows] == ["subject_purge", "subject_create"]
    assert rows[0]["key_name"].startswith("local:") and rows[0]["request_id"].startswith(
        "cli-purge"
    )
    refused = run_cli(env, "audit", "export", "--csv", "-", "--since", "2026-01-01")
    assert refused.returncode == 2 and "time zone" in refused.stderr


def test_the_first_start_prints_an_admin_key_that_logs_in_and_the_second_none(
    tmp_path: Path,
) -> None:
    env = lineup_env(tmp_path / "data")
    first = serve_once(env, tmp_path / "first.log")
    (key,) = [line.strip() for line in first.splitlines() if line.strip().startswith("lk_")]
    assert "/login" in first
    assert is_valid(tmp_path / "data", key)
    second = serve_once(env, tmp_path / "second.log", key=key)
    assert "lk_" not in second


def serve_once(env: dict[str, str], log: Path, *, key: str | None = None) -> str:
    """Start `lineup serve`, wait until it answers (with `key`, once the log shows it),
    stop it, and return its log."""
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(LINEUP), "serve", "--port", "0"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        wait_for(lambda: answers(log, process, key), timeout=240, what=f"{log.name} to answer")
    finally:
        process.terminate()
        process.wait(timeout=60)
    return log.read_text()


def answers(log: Path, process: subprocess.Popen[bytes], key: str | None) -> bool:
    assert process.poll() is None, log.read_text()
    text = log.read_text()
    if "Uvicorn running on " not in text:
        return False
    url = text.split("Uvicorn running on ")[1].split()[0]
    key = key or next(
        (line.strip() for line in text.splitlines() if line.strip().startswith("lk_")), ""
    )
    try:
        stats = httpx.get(f"{url}/stats", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    except httpx.TransportError:
        return False
    return stats.status_code == 200


def test_serve_refuses_auth_off_on_an_address_others_reach(tmp_path: Path) -> None:
    refused = run_cli(lineup_env(tmp_path / "data", auth="off"), "serve", "--host", "0.0.0.0")
    assert refused.returncode == 2
    assert "LINEUP_AUTH=off is refused while the service listens on 0.0.0.0" in refused.stderr
    assert not (tmp_path / "data" / "lineup.db").exists()  # refused before anything started
