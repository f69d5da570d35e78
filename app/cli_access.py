"""`lineup keys`, `lineup audit` and `lineup purge`: who may use the service, the record of
what they did, and retention, from the machine that holds the database.

Whoever can run these holds the database itself, so they act as admins,
recorded under the local account's name. `keys` and `audit` open the database
only (migrated first): no model is loaded, so they answer at once, on a fresh
data directory too.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from app.access.roles import Role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@contextmanager
def _database() -> "Iterator[sessionmaker[Session]]":
    """Sessions of the configured database, brought to the current schema first.

    What `app.composition.open_database` does, from `app.db` itself: importing the
    composition root would import the gallery, torch and FAISS, for seconds.
    """
    from app.config import get_settings
    from app.db.engine import create_engine_for, make_session_factory
    from app.db.migrate import upgrade_database

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    upgrade_database(url)
    engine = create_engine_for(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A unique name: the person or client it is for.")],
    role: Annotated[Role, typer.Option(help="viewer, investigator, enroller or admin.")],
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Default: never expires.")
    ] = None,
) -> None:
    """Create a key and print it once, alone on the last line; only its hash is kept."""
    from app.access.keys import KeyRefused, create_key
    from app.audit.actor import local_actor

    with _database() as sessions:
        try:
            made = create_key(
                sessions,
                name=name,
                role=role,
                by=local_actor("keys"),
                expires_in_days=expires_in_days,
            )
        except KeyRefused as error:
            _fail(str(error), code=EXIT_BAD_INPUT)
    expires = made.info.expires_at.isoformat() if made.info.expires_at else "never"
    typer.echo(f"key {made.info.name!r} ({made.info.role}, expires {expires}); shown this once:")
    typer.echo(made.key)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: name, role, prefix, created, last used, expires, revoked. No secrets."""
    from app.access.keys import list_keys

    with _database() as sessions:
        keys = list_keys(sessions)
    table = Table("name", "role", "prefix", "created", "last used", "expires", "revoked")
    for key in keys:
        table.add_row(
            key.name,
            key.role,
            key.prefix,
            _when(key.created_at),
            _when(key.last_used_at),
            _when(key.expires_at),
            _when(key.revoked_at) if key.revoked_at else "active" if key.active else "expired",
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key at once, in every process; its web sessions end with it."""
    from app.access.keys import KeyNotFound, revoke_key
    from app.audit.actor import local_actor

    with _database() as sessions:
        try:
            revoked = revoke_key(sessions, name, by=local_actor("keys"))
        except KeyNotFound as error:
            _fail(str(error), code=EXIT_BAD_INPUT)
    typer.echo(f"key {revoked.name!r} revoked at {_when(revoked.revoked_at)}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit trail's chain. Exit 0 when intact (and print the head's hash, to
    keep elsewhere); otherwise 1, naming the first record that does not hold."""
    from app.audit.verify import verify_trail
    from app.db.engine import session_scope

    with _database() as sessions, session_scope(sessions) as session:
        check = verify_trail(session)
    if not check.intact:
        typer.echo(
            f"the audit trail is NOT intact: record {check.broken_at}: {check.problem} "
            f"({check.checked} records held before it)",
            err=True,
        )
        raise typer.Exit(EXIT_FAILED)
    typer.echo(
        f"the audit trail is intact: {check.checked} records checked; head record "
        f"{check.head_id}, hash {check.head_hash}"
    )


def _instant(value: str | None) -> datetime | None:
    """An ISO 8601 time with its zone (a time without one would be a guess)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no time zone; add one, e.g. {value}Z")
    return moment


Instant = Annotated[
    datetime | None,
    typer.Option(
        parser=_instant, metavar="TIME", help="ISO 8601 with its zone, e.g. 2026-01-31T00:00Z."
    ),
]


@audit_app.command("export")
def audit_export(
    csv: Annotated[Path, typer.Option("--csv", help="The file to write; - for standard output.")],
    action: Annotated[str | None, typer.Option(help="e.g. probe, subject_purge.")] = None,
    key: Annotated[str | None, typer.Option(help="The name of the key that acted.")] = None,
    subject: Annotated[
        int | None,
        typer.Option(
            help="Records naming this subject id: who searched for or enrolled this person."
        ),
    ] = None,
    case: Annotated[str | None, typer.Option(help="The case reference.")] = None,
    since: Instant = None,
    until: Annotated[
        datetime | None, typer.Option(parser=_instant, metavar="TIME", help="Exclusive.")
    ] = None,
) -> None:
    """Write the matching records as CSV, newest first, as GET /admin/audit/export.csv does."""
    from typing import get_args

    from app.audit.query import AuditFilter, trail_csv
    from app.audit.trail import Action
    from app.db.engine import session_scope

    if action is not None and action not in get_args(Action):
        known = ", ".join(get_args(Action))
        raise typer.BadParameter(f"{action!r} is not one of {known}", param_hint="--action")
    wanted = AuditFilter(
        action=action,
        key_name=key,
        subject_id=subject,
        case_reference=case,
        since=since,
        until=until,
    )
    with _database() as sessions, session_scope(sessions) as session:
        chunks = trail_csv(session, wanted)
        if str(csv) == "-":
            for chunk in chunks:
                typer.echo(chunk, nl=False)
            return
        with csv.open("w", encoding="utf-8", newline="") as out:
            out.writelines(chunks)
    typer.echo(f"wrote {csv}", err=True)


def purge() -> None:
    """Delete subjects past their retain_until (completely, each recorded) and audit records
    older than LINEUP_AUDIT_RETENTION_DAYS; end idle web sessions."""
    import time

    from app.audit.actor import local_actor
    from app.cli import open_lineup_reporting
    from app.config import get_settings
    from app.jobs.housekeeping import purge as run_purge

    called = time.perf_counter()
    settings = get_settings()
    lineup = open_lineup_reporting(settings, Console(stderr=True), since=called)
    try:
        report = run_purge(
            lineup.gallery, settings, sessions=lineup.sessions, by=local_actor("purge")
        )
    finally:
        lineup.close()
    typer.echo(
        f"purged {len(report.subjects)} expired subjects {report.subjects or ''}, "
        f"{report.audit_records} audit records past retention, "
        f"{report.web_sessions} idle web sessions"
    )


def print_first_admin_key(*, host: str, port: int) -> None:
    """On a gallery with no keys, create the admin key and print it once, with where to
    log in; on any other, print nothing."""
    from app.access.keys import create_first_admin_key
    from app.audit.actor import local_actor

    with _database() as sessions:
        made = create_first_admin_key(sessions, by=local_actor("serve"))
    if made is None:
        return
    where = f"http://{host}:{port}/login" if port else "/login, at the address logged below,"
    typer.echo(
        f"\nLineup's first start: log in at {where} with this admin key.\n"
        "It is shown this once (only its hash is kept); `lineup keys create` makes others.\n"
    )
    typer.echo(f"    {made.key}\n")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _fail(message: str, *, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
