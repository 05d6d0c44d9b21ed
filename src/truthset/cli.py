"""The `truthset` command: run the server, administer it, and script the API.

Commands that administer the server (init, users, keys, db) work on the local database named by
the settings; commands that move data (import, export) talk to a server through the SDK.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from typer.core import TyperCommand

from truthset.config import Settings, get_settings
from truthset.domain import Role, readable_size
from truthset.errors import TruthsetError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from truthset.client import Client
    from truthset.demo import DemoProject
    from truthset.domain import Principal
    from truthset.schemas import JobOut
    from truthset.storage import Database

app = typer.Typer(help="truthset: a self-hosted data engine for AI training data.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
users_app = typer.Typer(help="Members of an organization (run on the server).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (run on the server).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
orgs_app = typer.Typer(help="Organizations (run on the server).", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
quality_app = typer.Typer(help="Quality figures of a project (through the API).", no_args_is_help=True)
app.add_typer(quality_app, name="quality")
gold_app = typer.Typer(help="Gold tasks of a project (through the API).", no_args_is_help=True)
app.add_typer(gold_app, name="gold")
jobs_app = typer.Typer(help="Background jobs: progress, results, cancel (through the API).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
review_app = typer.Typer(help="Review completed tasks: accept, reject or fix (through the API).", no_args_is_help=True)
app.add_typer(review_app, name="review")
webhooks_app = typer.Typer(help="Webhooks: subscriptions, deliveries, replay (through the API).", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
tasks_app = typer.Typer(help="Tasks (through the API).", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
predictions_app = typer.Typer(help="Model predictions (through the API).", no_args_is_help=True)
app.add_typer(predictions_app, name="predictions")
projects_app = typer.Typer(
    help="Projects: list, show, check, create from a spec and update, archive, delete (through the API).",
    no_args_is_help=True,
)
app.add_typer(projects_app, name="projects")
batches_app = typer.Typer(
    help="Batches of a project: create, list, show, finalize, pause, resume, cancel (through the API).",
    no_args_is_help=True,
)
app.add_typer(batches_app, name="batches")
queue_app = typer.Typer(help="A project's task queue: its order, and re-ranking it (through the API).")
media_app = typer.Typer(help="Uploaded images (through the API).", no_args_is_help=True)
app.add_typer(media_app, name="media")
app.add_typer(queue_app, name="queue", no_args_is_help=True)


def _stdout_width() -> int | None:
    """Rich's width for stdout: the terminal's (or COLUMNS) when there is one. Piped to a file or
    another program, rich would cut every table to 80 columns with '…' (the worker figures have 11
    columns), and what is piped is read whole: wide enough for every table, then."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 240


console = Console(width=_stdout_width())
err_console = Console(stderr=True)

UrlOption = Annotated[str, typer.Option(envvar="TRUTHSET_URL", help="Server URL.")]
KeyOption = Annotated[str, typer.Option(envvar="TRUTHSET_API_KEY", help="API key.", show_default=False)]
OrgOption = Annotated[str | None, typer.Option("--org", help="Organization id (when there are several).")]


def main() -> None:
    """The console script: a domain error (a database that cannot be served, a full disk, a refused
    action) ends the command with one line on stderr and exit status 1, not a traceback."""
    try:
        app()
    except TruthsetError as exc:
        err_console.print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)  # one line, whatever the width
        sys.exit(1)
    except Exception as exc:
        # an API error (a 404, a 409) from a command that talks to a server: one line too. The SDK is
        # imported only by those commands, so when it is not loaded nothing here could be its error.
        client = sys.modules.get("truthset.client")
        if client is None or not isinstance(exc, client.ApiError):
            raise
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)


def _database(settings: Settings | None = None) -> Any:
    from truthset.storage import Database, upgrade

    settings = settings or get_settings()
    upgrade(settings.resolved_database_url)
    _warn_if_open_to_others(settings)
    return Database(
        settings.resolved_database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        lock_timeout=settings.lock_timeout_seconds,
    )


def _warn_if_open_to_others(settings: Settings) -> None:
    """One line per data path other users can read: the database holds password and key hashes.

    New data directories are created owner-only; one made by an earlier version (or by hand) keeps
    its mode, so say how to close it rather than change it behind the operator's back.
    """
    from truthset.storage.files import open_to_others, sqlite_file

    database = sqlite_file(settings.resolved_database_url)
    for path, mode in open_to_others([settings.data_dir, *([database] if database else [])]):
        err_console.print(
            f"[yellow]warning:[/yellow] {escape(str(path))} is open to other users (mode {mode:o}) and holds "
            f"password and key hashes: run `chmod -R go= {escape(str(settings.data_dir))}`",
            soft_wrap=True,
        )


# --- server ------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: settings host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings port).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Run the server (migrating the database first)."""
    import uvicorn

    from truthset.storage.files import hold_data_dir

    settings = get_settings()
    _database(settings).dispose()
    hold_data_dir(settings.data_dir)  # `truthset db restore` refuses while it is held
    console.print(f"truthset on http://{host or settings.host}:{port or settings.port}  (data: {settings.data_dir})")
    uvicorn.run(
        "truthset.api:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default, so any local client could
        # pick its own address (and slip past the sign-in lockout): only named proxies are believed
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        # SIGTERM: finish what is in flight, but end requests still running after this (a client
        # that keeps an upload open would otherwise keep the server alive)
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Jobs at once (default: TRUTHSET_JOBS_CONCURRENCY).")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Run only jobs of this kind (repeat for several).")
    ] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Run the jobs that are due, then exit (cron, one-off).")
    ] = False,
) -> None:
    """Run background jobs (refits, exports, webhook deliveries) until SIGTERM or Ctrl-C."""
    from truthset import jobs
    from truthset.storage.files import hold_data_dir

    settings = get_settings()
    db = _database(settings)
    hold_data_dir(settings.data_dir)  # `truthset db restore` refuses while it is held
    overrides: dict[str, Any] = {"concurrency": concurrency} if concurrency else {}
    if kind:
        unknown = sorted(set(kind) - set(jobs.kinds()))
        if unknown:
            raise typer.BadParameter(f"no handler for {', '.join(unknown)}; known: {', '.join(jobs.kinds())}")
        overrides["kinds"] = kind
    runner = jobs.runner_for(db, settings, **overrides)
    err_console.print(
        f"truthset worker {runner.name}: {runner.concurrency} at once; kinds: {', '.join(runner.kinds) or 'none'}",
        soft_wrap=True,
    )
    try:
        if until_idle:
            err_console.print(f"ran {runner.run_until_idle()} jobs")
        else:
            _run_until_signal(runner, settings.shutdown_timeout_seconds)
    finally:
        db.dispose()


def _run_until_signal(runner: Any, shutdown_timeout: float) -> None:
    """Run ``runner`` until SIGTERM or SIGINT, then stop it: running jobs go back to the queue."""
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    runner.start()
    try:
        while not stop.wait(1.0):  # bounded, so the main thread gets to run the signal handler
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not runner.stop(shutdown_timeout):
            err_console.print("warning: a job did not stop in time; its lease runs out and another worker resumes it")


@app.command()
def init(
    org: Annotated[str, typer.Option("--org-name", help="Organization name.")] = "My organization",
    email: Annotated[str, typer.Option(help="The owner's email.")] = "owner@example.com",
) -> None:
    """Create the first organization and its owner; prints a one-time password and API key."""
    from truthset.services import accounts

    db = _database()
    if accounts.organizations(db):
        err_console.print("already initialised: add people with `truthset users add`")
        raise typer.Exit(1)
    created = accounts.init_organization(db, org, email)
    _print_credentials(created)


def _print_credentials(created: dict[str, Any]) -> None:
    console.print(f"[bold]Organization[/bold] {created['organization']['name']} ({created['organization']['id']})")
    console.print(f"[bold]Owner[/bold]        {created['member']['email']}")
    console.print(f"[bold]Password[/bold]     {created['password']}")
    console.print(f"[bold]API key[/bold]      {created['api_key']}")
    console.print("[yellow]Both are shown once and stored only as hashes: save them now.[/yellow]")


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Only set up the demo data.")] = False,
) -> None:
    """Set up a demo organization and one demo project per kind of work, with tasks (once), then serve."""
    from truthset import demo as demo_data
    from truthset.services import accounts, projects

    settings = get_settings()
    db = _database(settings)
    if not accounts.organizations(db):
        _print_credentials(accounts.init_organization(db, "Demo organization", "owner@example.com"))
    owner = accounts.local_admin(db)
    existing, _ = projects.list_projects(db, owner, cursor=None, limit=1000)
    by_name = {p["name"]: p for p in existing}
    installed = demo_data.installed_types()
    for item in demo_data.PROJECTS:
        missing = item.missing_types(installed)
        if missing:
            console.print(f"Skipped demo project {item.name}: question type {', '.join(missing)} is not installed.")
            continue
        _demo_project(db, owner, settings, item, by_name.get(item.name))
    db.dispose()
    if not no_serve:
        serve(host=host, port=port, workers=1)


def _demo_project(
    db: Database, owner: Principal, settings: Settings, item: DemoProject, project: dict[str, Any] | None
) -> None:
    """Create one demo project (unless it exists), upload its images and import its tasks, idempotently."""
    from truthset import demo as demo_data
    from truthset.questions import media_reference
    from truthset.schemas import ProjectCreate
    from truthset.services import media, projects, tasks

    if project is None:
        project = projects.create_project(
            db,
            owner,
            ProjectCreate(name=item.name, instructions=item.instructions, spec=item.spec, quality={"overlap": 1}),
            default_lease_seconds=settings.default_lease_seconds,
        )
    refs = {}
    for file in item.images():  # the media store keeps a file once, by content: a second run adds nothing
        row = media.store(
            db,
            owner,
            [demo_data.data_file(file)],
            filename=file.rsplit("/", 1)[-1],
            media_dir=settings.media_dir,
            max_bytes=settings.max_upload_bytes,
        )
        refs[file] = media_reference(row["id"])
    report = tasks.import_tasks(db, owner, project["id"], enumerate(item.tasks(refs), start=1), on_error="reject")
    console.print(
        f"Demo project [bold]{project['name']}[/bold] ({project['id']}): "
        f"{report.created} tasks added, {report.existing} already there."
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (safe to run repeatedly)."""
    settings = get_settings()
    _database(settings).dispose()
    console.print(f"database at {settings.resolved_database_url.split('@')[-1]} is up to date")


@db_app.command("backup")
def db_backup(
    destination: Annotated[Path, typer.Argument(help="A new directory for the backup (absent or empty).")],
) -> None:
    """Back up the SQLite database (one snapshot, while the server runs) and the data directory's files."""
    from truthset.services import backups

    report = backups.backup(get_settings(), destination)
    console.print(f"backup written to {escape(report.path)} in {report.seconds} s")
    console.print(f"  database  {_mib(report.database_bytes)}, schema {report.revision}, {_counted(report.counts)}")
    console.print(f"  files     {report.files} ({_mib(report.file_bytes)}) from media/ and models/")
    console.print(f"  webhook key  {_KEY_SAYS[report.webhook_key]}")


@db_app.command("restore")
def db_restore(
    source: Annotated[Path, typer.Argument(help="A backup directory made by `truthset db backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that holds data, and a different webhook key.")
    ] = False,
) -> None:
    """Restore a backup into the configured data directory (stop the server first)."""
    from truthset.services import backups

    report = backups.restore(get_settings(), source, force=force)
    console.print(f"restored {escape(str(source))} into {escape(report.database)} in {report.seconds} s")
    console.print(f"  database  schema {report.revision}, {_counted(report.counts)}")
    console.print(f"  files     {report.files} copied into media/ and models/")
    console.print(f"  webhook key  {_KEY_SAYS[report.webhook_key]}")


_KEY_SAYS = {
    "copied": "copied (webhook-secret.key)",
    "restored": "restored (webhook-secret.key)",
    "settings": "set in the settings (TRUTHSET_WEBHOOK_SECRET_KEY): keep it with the backup",
    "none": "none yet (no webhook secret stored)",
}


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {name}" for name, count in counts.items())


# --- members and keys (local administration) --------------------------------------------------


@users_app.command("list")
def users_list(org: OrgOption = None) -> None:
    """List members."""
    from truthset.services import accounts

    db = _database()
    admin = accounts.local_admin(db, org)
    members, _ = accounts.list_members(db, admin, cursor=None, limit=1000)
    table = Table("id", "email", "name", "role", "disabled")
    for member in members:
        table.add_row(
            member["id"], member["email"], member["name"], member["role"], "yes" if member["disabled_at"] else ""
        )
    console.print(table)


@users_app.command("add")
def users_add(
    email: str,
    role: Annotated[Role, typer.Option(help="owner, admin, manager, reviewer or annotator.")] = Role.ANNOTATOR,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    org: OrgOption = None,
) -> None:
    """Add a member; prints a one-time password."""
    from truthset.schemas import MemberCreate
    from truthset.services import accounts

    db = _database()
    created = accounts.add_member(db, accounts.local_admin(db, org), MemberCreate(email=email, name=name, role=role))
    console.print(f"added {created['member']['email']} ({created['member']['role']}), id {created['member']['id']}")
    console.print(f"one-time password: {created['password']}")


@users_app.command("set-role")
def users_set_role(member_id: str, role: Role, org: OrgOption = None) -> None:
    """Change a member's role."""
    from truthset.schemas import MemberUpdate
    from truthset.services import accounts

    db = _database()
    member = accounts.update_member(db, accounts.local_admin(db, org), member_id, MemberUpdate(role=role))
    console.print(f"{member['email']} is now {member['role']}")


@users_app.command("disable")
def users_disable(member_id: str, org: OrgOption = None) -> None:
    """Disable a member: their keys stop working at once."""
    from truthset.schemas import MemberUpdate
    from truthset.services import accounts

    db = _database()
    member = accounts.update_member(db, accounts.local_admin(db, org), member_id, MemberUpdate(disabled=True))
    console.print(f"{member['email']} is disabled")


@keys_app.command("create")
def keys_create(
    member_id: Annotated[str, typer.Option("--member", help="Member id (default: the first owner).")] = "",
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "cli key",
    org: OrgOption = None,
) -> None:
    """Create an API key; prints the secret once."""
    from truthset.schemas import ApiKeyCreate
    from truthset.services import accounts

    db = _database()
    key = accounts.create_key(db, accounts.local_admin(db, org), ApiKeyCreate(name=name, member_id=member_id or None))
    console.print(f"key {key['id']} for member {key['member_id']}:")
    console.print(key["key"])


@keys_app.command("list")
def keys_list(org: OrgOption = None) -> None:
    """List API keys (never their secrets)."""
    from truthset.services import accounts

    db = _database()
    keys, _ = accounts.list_keys(db, accounts.local_admin(db, org), cursor=None, limit=1000)
    table = Table("id", "name", "prefix", "member", "created", "revoked")
    for key in keys:
        table.add_row(
            key["id"],
            key["name"],
            key["prefix"] + "…",
            key["member_id"],
            str(key["created_at"])[:19],
            str(key["revoked_at"] or "")[:19],
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, org: OrgOption = None) -> None:
    """Revoke an API key."""
    from truthset.services import accounts

    db = _database()
    accounts.revoke_key(db, accounts.local_admin(db, org), key_id)
    console.print(f"revoked {key_id}")


@orgs_app.command("create")
def orgs_create(
    name: str,
    owner_email: Annotated[str, typer.Option("--owner-email", help="The new organization's owner.")],
    owner_name: Annotated[str, typer.Option("--owner-name", help="The owner's display name.")] = "",
) -> None:
    """Create another organization with its owner; prints a one-time password and API key."""
    from pydantic import ValidationError

    from truthset.schemas import MemberCreate, OrganizationCreate
    from truthset.services import accounts

    # the same checks as the API's bodies: a blank name or a malformed email is refused, naming it
    try:
        name = OrganizationCreate(name=name).name
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="NAME") from None
    try:
        owner_email = MemberCreate(email=owner_email).email
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--owner-email") from None
    _print_credentials(accounts.init_organization(_database(), name, owner_email, owner_name))


@orgs_app.command("list")
def orgs_list() -> None:
    """List the organizations of this server."""
    from truthset.services import accounts

    table = Table("id", "name", "created")
    for org in accounts.organizations(_database()):
        table.add_row(org["id"], org["name"], str(org["created_at"])[:19])
    console.print(table)


# --- data in and out (through the API) --------------------------------------------------------


@app.command("import")
def import_tasks(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="A .jsonl, .json, .csv, .parquet or .zip file of tasks, a .txt list of image URLs, "
            "or a folder of images.",
        ),
    ],
    project: Annotated[str, typer.Option(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    batch: Annotated[str | None, typer.Option(help="Batch id to add the tasks to.")] = None,
    on_error: Annotated[
        str, typer.Option(help="reject: store nothing if a line is bad; skip: store the good lines.")
    ] = "reject",
    format: Annotated[
        str | None,
        typer.Option(help="jsonl, json, csv, parquet, label-studio, images or urls (default: from the extension)."),
    ] = None,
    field: Annotated[str | None, typer.Option(help="Images: the spec's image field (default: its only one).")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow the import job until it ends.")] = True,
) -> None:
    """Import tasks from a file (or a folder of images): uploaded, then imported by a job, with progress."""
    from truthset.client import Client, ImportRejectedError

    if on_error not in ("reject", "skip"):
        raise typer.BadParameter("--on-error must be reject or skip")
    with Client(url, api_key) as client:
        with _progress() as progress:
            bar = progress.add_task(f"uploading {path.name}", total=path.stat().st_size if path.is_file() else None)
            job = client.imports.start(
                project,
                path,
                format=format,
                on_error=on_error,  # type: ignore[arg-type]
                batch_id=batch,
                field=field,
                progress=lambda offset: progress.update(bar, completed=offset),
            )
        if not wait:
            console.print(f"import job {job.id} is {job.status}: follow it with `truthset jobs show {job.id} --wait`")
            return
        try:
            report = _follow_import(client, job.id)
        except ImportRejectedError as exc:
            if exc.report is None:
                raise
            report = exc.report
    _print_import_report(report)
    if report.invalid:
        raise typer.Exit(2)


def _follow_import(client: Any, job_id: str) -> Any:
    """The import job's progress as a bar (rows read while it checks, rows stored after), then its report."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"))
    with Progress(*columns, TimeElapsedColumn(), console=err_console) as progress:
        bar = progress.add_task("waiting for the import job", total=None)

        def show(job: Any) -> None:
            phase = "checking" if job.progress.total is None else "storing"
            if job.status == "queued":
                phase = "waiting for the import job"
            progress.update(bar, completed=job.progress.done, total=job.progress.total, description=phase)

        return client.imports.wait(job_id, progress=show)


def _print_import_report(report: Any) -> None:
    console.print(
        f"received {report.received}, created {report.created}, existing {report.existing}, "
        f"invalid {report.invalid}{'' if report.stored else ' - nothing was stored'}"
    )
    for error in report.errors:
        console.print(f"  line {error.line}: {escape(error.message)}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


@app.command("export")
def export(
    project_arg: Annotated[str | None, typer.Argument(metavar="PROJECT", help="Project id.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Project id (or give it first).")] = None,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    export_format: Annotated[str, typer.Option("--format", help="jsonl, csv, parquet...")] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="Output file (default: standard output).")] = None,
    all_statuses: Annotated[bool, typer.Option("--all", help="Every task, not only completed ones.")] = False,
    status: Annotated[str | None, typer.Option(help="Only tasks in this status.")] = None,
    batch: Annotated[str | None, typer.Option(help="Only this batch's tasks.")] = None,
    min_confidence: Annotated[
        float | None, typer.Option(min=0, max=1, help="Only tasks whose result is at least this confident.")
    ] = None,
    review_status: Annotated[
        str | None, typer.Option(help="Only tasks at this review stage: accepted, rejected, fixed, pending.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only tasks changed since this cursor (printed by the last export).")
    ] = None,
    question: Annotated[
        list[str] | None,
        typer.Option(
            "--question",
            help="Only this question (repeat it for several): e.g. the boxes question of a YOLO export.",
        ),
    ] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Start the export job, print its id, exit.")] = False,
) -> None:
    """Export tasks with their results (and every response) as a background job, then download it."""
    from truthset.client import Client

    project_id = project_arg or project
    if not project_id:
        raise typer.BadParameter("give the project id (truthset export PROJECT ...)")
    filters = {
        "status": status,
        "all_statuses": all_statuses,
        "batch_id": batch,
        "min_confidence": min_confidence,
        "review_status": review_status,
        "updated_since": since,
    }
    with Client(url, api_key) as client:
        job = client.start_export(project_id, format=export_format, questions=question or None, **filters)
        if no_wait:
            console.print(f"export job {job.id} queued; follow it with: truthset jobs show {job.id} --wait")
            return
        job = _follow_export(client, job.id)
        if job.status != "succeeded":
            err_console.print(f"export job {job.id} {job.status}: {escape(job.error or '')}")
            raise typer.Exit(1)
        _deliver_export(client, job, out)


def _follow_export(client: Any, job_id: str) -> Any:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"))
    with Progress(*columns, TimeElapsedColumn(), console=err_console) as progress:
        bar = progress.add_task("exporting", total=None)

        def show(job: Any) -> None:
            progress.update(bar, completed=job.progress.done, total=job.progress.total)

        return client.jobs.wait(job_id, progress=show)


def _deliver_export(client: Any, job: Any, out: Path | None) -> None:
    import tempfile

    result = job.result or {}
    if out is not None:
        client.download_export(job.id, out)
    else:  # standard output: through a temporary file, so a broken download prints nothing
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_export(job.id, Path(folder) / "export")
            with path.open("rb") as file:
                while block := file.read(1 << 20):
                    sys.stdout.buffer.write(block)
            sys.stdout.flush()
    where = f" to {out}" if out else ""
    err_console.print(f"wrote {result.get('tasks', 0)} tasks ({result.get('size', 0):,} bytes){where}")
    err_console.print(f"next delta export: --since {result.get('cursor')}")


@quality_app.command("agreement")
def quality_agreement(
    project: Annotated[str, typer.Argument(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    batch: Annotated[str | None, typer.Option(help="Only this batch's tasks.")] = None,
) -> None:
    """Agreement per question: percent agreement, Fleiss' and Cohen's kappa, Krippendorff's alpha."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        agreement = client.projects.agreement(project, batch_id=batch)
    table = Table("question", "type", "tasks", "agreement", "Fleiss", "Cohen", "alpha", "level")
    for q in agreement.questions:
        figures = (q.percent_agreement, q.fleiss_kappa, q.cohens_kappa, q.krippendorff_alpha)
        shown = ["-" if value is None else f"{value:.3f}" for value in figures]
        table.add_row(q.question, q.type, str(q.tasks), *shown, q.alpha_level or "-")
    console.print(table)
    for q in agreement.questions:
        for figure, reason in q.reasons.items():
            console.print(f"{q.question}: {figure} is not defined: {reason}")


def _worker_row(w: Any) -> list[str]:
    """A worker's figures as the cells of ``truthset quality workers``."""
    median = "-" if w.median_duration_ms is None else f"{w.median_duration_ms / 1000:.1f}"
    agrees = "-" if w.agreement_with_results is None else f"{w.agreement_with_results:.3f}"
    accuracy = _share_of(w.estimated_accuracy, w.accuracy_interval, w.scored_answers)
    on_gold = _share_of(w.gold_accuracy, w.gold_interval, w.gold_answers)
    reviewed = f"{w.reviewed}: {w.review_rejected}" if w.reviewed else "-"
    kept = f"{w.prefill_accepted} of {w.prefill_shown}" if w.prefill_shown else "-"  # a model's (models.md)
    name, kind, responses = w.name or w.worker_id, str(w.kind), str(w.responses)
    measured, status = _measured_text(w.measured), w.status or "-"
    return [name, kind, responses, median, agrees, accuracy, measured, status, on_gold, reviewed, kept]


def _share_of(share: float | None, interval: list[float] | None, answers: int) -> str:
    """A share with its 95% interval and how many answers it rests on: ``0.912 (0.850-0.951, n=120)``."""
    if share is None or not interval:
        return "-"
    low, high = interval
    return f"{share:.3f} ({low:.3f}-{high:.3f}, n={answers})"


def _measured_text(measured: dict[str, dict[str, float]]) -> str:
    """A worker's figures from the fitted models: ``sentiment 0.912, stars ±0.83``."""
    parts = [
        f"{key} ±{m['noise_sd']:.2g}" if "noise_sd" in m else f"{key} {m['accuracy']:.3f}"
        for key, m in measured.items()
    ]
    return ", ".join(parts) or "-"


@quality_app.command("refit")
def quality_refit(
    project: Annotated[str, typer.Argument(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the refit has run; show what it changed.")] = False,
) -> None:
    """Refit the project's worker models now (a background job); completed tasks are re-scored."""
    job = _run_job(lambda client: client.projects.refit(project), url, api_key, wait=wait)
    if job is None:
        return
    result = job.result or {}
    for question, fitted in (result.get("fitted") or {}).items():
        console.print(f"{question}: version {fitted['version']}, {fitted['responses']} responses")
    console.print(f"answers changed: {result.get('changed_answers', 0)}")


@quality_app.command("models")
def quality_models(
    project: Annotated[str, typer.Argument(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """The project's fitted worker models: version, method, when and on what, how the confidence is calibrated."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        models = client.projects.quality_models(project)
    if not models:
        console.print("no worker model yet: the first refit comes after 20 answers (or: truthset quality refit)")
        return
    table = Table("model", "method", "version", "fitted (UTC)", "answers", "workers", "calibrated")
    for m in models:
        table.add_row(
            escape(m.key),
            m.method,
            str(m.version),
            f"{m.fitted_at:%Y-%m-%d %H:%M:%S}",
            str(m.responses),
            str(m.workers),
            _calibration(m.gold_tasks, m.temperature, m.shared_sd),
        )
    console.print(table)


def _calibration(gold_tasks: int, temperature: float | None, shared_sd: float | None) -> str:
    """How a model's confidence is calibrated, in words: on gold or from the answers alone."""
    source = f"on {gold_tasks} gold tasks" if gold_tasks else "from the answers alone"
    figure = f"temperature {temperature:.3f}" if temperature is not None else f"shared error sd {shared_sd:.3g}"
    return f"{figure}, {source}"


@quality_app.command("workers")
def quality_workers(
    project: Annotated[str, typer.Argument(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    batch: Annotated[str | None, typer.Option(help="Only this batch's tasks.")] = None,
) -> None:
    """Figures per worker: responses, time per task, agreement with results, estimated accuracy; models'
    auto-labeling."""
    from truthset.client import Client

    columns = ["worker", "kind", "responses", "median s", "agrees with results", "est. accuracy (95%)"]
    columns += ["measured by the fit", "status", "gold (95%)", "reviewed: rejected", "pre-fill kept"]
    with Client(url, api_key) as client:
        workers = list(client.projects.workers(project, batch_id=batch))
    rows = [_worker_row(w) for w in workers]
    if not any(row[6] != "-" for row in rows):  # before a refit: no column of dashes to squeeze the others
        columns.pop(6)
        rows = [row[:6] + row[7:] for row in rows]
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    models = [w for w in workers if str(w.kind) == "model"]
    if models:
        auto = Table("model", "verified (95%)", "may auto-label", "auto-labeled", "reopened", "audits agreed")
        for w in models:
            auto.add_row(*_auto_label_row(w))
        console.print(auto)


def _auto_label_row(w: Any) -> list[str]:
    """A model worker's auto-label figures as the cells of ``truthset quality workers``'s second table."""
    verified = _share_of(w.verified_accuracy, w.verified_interval, w.verified_tasks)
    may = "yes" if w.auto_label_eligible else f"no: {w.auto_label_blocked_by}"
    audits = f"{w.audits_agreed} of {w.audits}" if w.audits else "-"
    return [w.name or w.worker_id, verified, may, str(w.auto_labeled), str(w.auto_labels_reopened), audits]


# --- review and task history ---


def _json_line(value: Any) -> str:
    return escape(json.dumps(value, ensure_ascii=False, default=str))


@review_app.command("next")
def review_next(
    project: Annotated[str, typer.Argument(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Claim the next task waiting for review and show its data, every response and the result."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        item = client.reviews.next(project)
    if item is None:
        console.print("nothing is waiting for your review in this project")
        return
    task = item.task
    console.print(f"task {task.id} (claimed until {item.expires_at:%Y-%m-%d %H:%M:%S} UTC)")
    console.print(f"data: {_json_line(task.data)}")
    for response in item.responses:
        console.print(f"  {escape(response.worker_name or response.worker_id)}: {_json_line(response.answer)}")
    result = task.result or {}
    console.print(f"result: {_json_line(result.get('answer'))} confidence {task.confidence}")
    console.print(f"then: truthset review accept|reject|fix {task.id}")


def _print_verdict(result: Any) -> None:
    task = result.task
    console.print(f"{result.review.verdict}: task {task.id} is {task.status}, review {task.review_status}")


@review_app.command("accept")
def review_accept(
    task: Annotated[str, typer.Argument(help="Task id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    reason: Annotated[str | None, typer.Option(help="An optional note.")] = None,
) -> None:
    """Accept the task's result."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        _print_verdict(client.reviews.accept(task, reason=reason))


@review_app.command("reject")
def review_reject(
    task: Annotated[str, typer.Argument(help="Task id.")],
    reason: Annotated[str, typer.Option(help="What is wrong (required).")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Reject the task's result: the task goes back to the queue for more judgments."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        _print_verdict(client.reviews.reject(task, reason))


@review_app.command("fix")
def review_fix(
    task: Annotated[str, typer.Argument(help="Task id.")],
    answer: Annotated[str, typer.Option(help='The corrected answer as JSON, e.g. \'{"sentiment": "negative"}\'.')],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    reason: Annotated[str | None, typer.Option(help="An optional note.")] = None,
) -> None:
    """Replace the task's answer with yours (it outranks the crowd)."""
    from truthset.client import Client

    try:
        parsed = json.loads(answer)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--answer is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise typer.BadParameter("--answer must be a JSON object")
    with Client(url, api_key) as client:
        _print_verdict(client.reviews.fix(task, parsed, reason=reason))


@review_app.command("list")
def review_list(
    task: Annotated[str, typer.Argument(help="Task id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """A task's reviews, oldest first."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        reviews = client.reviews.list(task)
    table = Table("when (UTC)", "reviewer", "verdict", "reason")
    for r in reviews:
        table.add_row(
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
            escape(r.reviewer_name or r.reviewer_id),
            str(r.verdict),
            escape(r.reason or ""),
        )
    console.print(table)


def _json_file(path: Path, what: str) -> Any:
    """A JSON file's value; a bad one ends the command naming the file (exit status 2, no traceback)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        err_console.print(f"{what}: {path} is not a readable JSON file ({exc})", soft_wrap=True)  # one line
        raise typer.Exit(2) from None


def _text_file(path: Path | None, what: str) -> str | None:
    """A UTF-8 text file's content (None without one); an unreadable one ends the command naming it."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err_console.print(f"{what}: {path} cannot be read ({exc})", soft_wrap=True)
        raise typer.Exit(2) from None


@projects_app.command("list")
def projects_list(
    archived: Annotated[bool, typer.Option("--archived", help="Archived projects too.")] = False,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """The organization's projects, oldest first: id, name, questions, policy."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        found = list(client.projects.list(include_archived=archived))
    table = Table("id", "name", "questions", "overlap", "created (UTC)", "archived")
    for project in found:
        questions = ", ".join(f"{q['name']} ({q['type']})" for q in project.spec.get("questions", []))
        table.add_row(
            project.id, escape(project.name), escape(questions), _overlap(project.quality),
            f"{project.created_at:%Y-%m-%d %H:%M}", "yes" if project.archived_at else "",
        )  # fmt: skip
    console.print(table if found else "no project yet (truthset projects create NAME --spec spec.json)")


def _overlap(quality: dict[str, Any]) -> str:
    low, high, target = quality.get("min_overlap"), quality.get("max_overlap"), quality.get("target_confidence")
    if low == high:
        return str(low)
    return f"{low}-{high} to {target}"


@projects_app.command("show")
def projects_show(
    project: Annotated[str, typer.Argument(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """One project as the API gives it (JSON: spec, quality policy, instructions)."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        found = client.projects.get(project)
    console.print_json(found.model_dump_json())


@projects_app.command("check")
def projects_check(
    spec: Annotated[Path, typer.Option(help="A JSON file with the spec: fields and questions (docs/questions.md).")],
    quality: Annotated[Path | None, typer.Option(help="A JSON file with the quality policy (docs/quality.md).")] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Also check it as a change of this project (id).")
    ] = None,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Check a spec (and policy) file without saving: exit 0 if a project could be made of it (or
    the project changed to it); otherwise the server's error naming the field, exit 1."""
    from truthset.client import Client

    body_spec = _json_file(spec, "--spec")
    policy = _json_file(quality, "--quality") if quality is not None else None
    with Client(url, api_key) as client:
        checked = client.projects.check_spec(body_spec, quality=policy, project_id=project)
    questions = ", ".join(f"{q['name']} ({q['type']})" for q in checked.spec.get("questions", []))
    console.print(f"{spec}: valid; questions: {escape(questions)}; overlap {_overlap(checked.quality)}", soft_wrap=True)


@projects_app.command("archive")
def projects_archive(
    project: Annotated[str, typer.Argument(help="Project id.")],
    undo: Annotated[bool, typer.Option("--undo", help="Bring an archived project back.")] = False,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Archive a project: its queue stops serving, its tasks and results stay (--undo brings it back)."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        changed = client.projects.update(project, archived=not undo)
    console.print(f"project {escape(changed.name)} is {'archived' if changed.archived_at else 'active'}")


@projects_app.command("delete")
def projects_delete(
    project: Annotated[str, typer.Argument(help="Project id.")],
    with_data: Annotated[
        bool, typer.Option("--with-data", help="Delete it with all its tasks and answers, for good (owners, admins).")
    ] = False,
    confirm: Annotated[str | None, typer.Option(help="With --with-data: the project's name, repeated.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="With --with-data: follow the deletion to its end.")] = False,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Delete a project that has no task; with --with-data --confirm NAME, one with tasks and all its data."""
    from truthset.client import Client

    if not with_data:
        with Client(url, api_key) as client:
            client.projects.delete(project)
        console.print(f"deleted project {project}")
        return
    if not confirm:
        err_console.print(
            "error: --with-data deletes every task and answer for good: repeat the project's name with --confirm"
        )
        raise typer.Exit(2)
    job = _run_job(lambda client: client.projects.delete_with_data(project, confirm), url, api_key, wait=wait)
    if job is not None:
        result = job.result or {}
        console.print(
            f"deleted project {project} with {result.get('tasks', 0)} tasks and {result.get('files', 0)} files"
        )


@projects_app.command("create")
def projects_create(
    name: Annotated[str, typer.Argument(help="The project's name.")],
    spec: Annotated[Path, typer.Option(help="A JSON file with the spec: fields and questions (docs/questions.md).")],
    quality: Annotated[
        Path | None, typer.Option(help="A JSON file with the quality policy (docs/quality.md); default: overlap 1.")
    ] = None,
    instructions: Annotated[
        Path | None, typer.Option(help="A Markdown file with the instructions annotators see.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="A short description.")] = None,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Create a project from a spec file; prints its id (for truthset import --project)."""
    from truthset.client import Client

    body_spec = _json_file(spec, "--spec")
    policy = _json_file(quality, "--quality") if quality is not None else None
    text = _text_file(instructions, "--instructions")
    with Client(url, api_key) as client:
        made = client.projects.create(name, body_spec, quality=policy, instructions=text, description=description)
    console.print(f"created project {escape(made.name)}: {made.id}")


@projects_app.command("update")
def projects_update(
    project: Annotated[str, typer.Argument(help="Project id.")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    spec: Annotated[
        Path | None, typer.Option(help="A JSON file with the new spec (a project with work takes only some changes).")
    ] = None,
    quality: Annotated[
        Path | None, typer.Option(help="A JSON file with the whole new quality policy (docs/quality.md).")
    ] = None,
    instructions: Annotated[Path | None, typer.Option(help="A Markdown file with the new instructions.")] = None,
    description: Annotated[str | None, typer.Option(help="A new short description.")] = None,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Change a project: its name, spec, quality policy, instructions or description (what is not given stays)."""
    from truthset.client import Client

    changes = {
        "name": name,
        "spec": _json_file(spec, "--spec") if spec is not None else None,
        "quality": _json_file(quality, "--quality") if quality is not None else None,
        "instructions": _text_file(instructions, "--instructions"),
        "description": description,
    }
    given = [key for key, value in changes.items() if value is not None]
    if not given:
        err_console.print("nothing to change: give --name, --spec, --quality, --instructions or --description")
        raise typer.Exit(2)
    with Client(url, api_key) as client:
        changed = client.projects.update(project, **changes)
    console.print(
        f"updated project {escape(changed.name)} ({', '.join(given)}); overlap {_overlap(changed.quality)}",
        soft_wrap=True,
    )


@batches_app.command("create")
def batches_create(
    project: Annotated[str, typer.Argument(help="Project id.")],
    name: Annotated[str, typer.Argument(help="The batch's name (unique in the project).")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Open a batch: tasks imported into it (truthset import --batch ID) wait until it is finalized."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        made = client.batches.create(project, name)
    console.print(f"created batch {escape(made.name)}: {made.id} (open: import into it, then finalize it)")


@batches_app.command("list")
def batches_list(
    project: Annotated[str, typer.Argument(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """A project's batches, oldest first: id, name, status and tasks per status."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        found = list(client.batches.list(project))
    table = Table("id", "name", "status", "tasks", "created (UTC)", "finalized (UTC)")
    for batch in found:
        table.add_row(
            batch.id, escape(batch.name), str(batch.status), _counts(batch.counts),
            f"{batch.created_at:%Y-%m-%d %H:%M}", f"{batch.finalized_at:%Y-%m-%d %H:%M}" if batch.finalized_at else "",
        )  # fmt: skip
    console.print(table if found else f"no batch yet (truthset batches create {project} NAME)")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "none"


@batches_app.command("show")
def batches_show(
    batch: Annotated[str, typer.Argument(help="Batch id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """One batch as the API gives it (JSON: status, tasks per status, times)."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        console.print_json(client.batches.get(batch).model_dump_json())


_BATCH_ACTIONS = {
    "finalize": "Finalize an open batch: its tasks join the queue (finalizing it again changes nothing).",
    "pause": "Pause a finalized batch: its waiting tasks leave the queue until it is resumed.",
    "resume": "Resume a paused batch: its tasks join the queue again.",
    "cancel": "Cancel a batch: its tasks that are not completed are canceled (finished ones keep their results).",
}


def _batch_command(action: str, help_text: str) -> None:
    """One ``truthset batches ACTION BATCH_ID`` command: the four differ only in the SDK call."""

    def command(
        batch: Annotated[str, typer.Argument(help="Batch id.")],
        url: UrlOption = "http://127.0.0.1:8000",
        api_key: KeyOption = "",
    ) -> None:
        from truthset.client import Client

        with Client(url, api_key) as client:
            done = getattr(client.batches, action)(batch)
        console.print(f"batch {escape(done.name)} is {done.status}: {_counts(done.counts)}")

    batches_app.command(action, help=help_text)(command)


for _action, _help in _BATCH_ACTIONS.items():
    _batch_command(_action, _help)


@tasks_app.command("list")
def tasks_list(
    project: Annotated[str, typer.Argument(help="Project id.")],
    status: Annotated[str | None, typer.Option(help="Only tasks in this status.")] = None,
    batch: Annotated[str | None, typer.Option(help="Only tasks of this batch (id).")] = None,
    min_confidence: Annotated[float | None, typer.Option(help="Result confidence at least this.")] = None,
    max_confidence: Annotated[float | None, typer.Option(help="Result confidence at most this.")] = None,
    worker: Annotated[str | None, typer.Option(help="Only tasks this worker (id) answered.")] = None,
    gold: Annotated[bool | None, typer.Option("--gold/--no-gold", help="Only gold tasks / no gold task.")] = None,
    review: Annotated[
        str | None, typer.Option(help="Review outcome: accepted, rejected, fixed, pending, reviewing or none.")
    ] = None,
    meta: Annotated[list[str] | None, typer.Option(help="Metadata filter key=value (repeatable).")] = None,
    search: Annotated[str | None, typer.Option(help="Words that must all appear in the task's data.")] = None,
    sort: Annotated[
        str, typer.Option(help="created, updated, confidence or priority; -name for descending.")
    ] = "created",
    limit: Annotated[int, typer.Option(help="At most this many tasks.")] = 50,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """A project's tasks with the task browser's filters and sorts (as GET /api/v1/tasks)."""
    import itertools

    from truthset.client import Client

    metadata = {}
    for item in meta or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err_console.print(f"--meta must be key=value, not {item!r}")
            raise typer.Exit(2)
        metadata[key] = value
    with Client(url, api_key) as client:
        found = client.tasks.list(
            project,
            status=status,
            batch_id=batch,
            min_confidence=min_confidence,
            max_confidence=max_confidence,
            worker_id=worker,
            gold=gold,
            review_status=review if review not in (None, "none") else None,
            unreviewed=review == "none",
            metadata=metadata,
            search=search,
            sort=sort,
            page_size=min(limit, 500),
        )
        rows = list(itertools.islice(found, limit))
    table = Table("task", "status", "priority", "confidence", "review", "updated (UTC)", "data")
    for task in rows:
        confidence = f"{task.confidence:.2f}" if task.confidence is not None else ""
        preview = next((v for v in task.data.values() if isinstance(v, str)), "")[:60]
        table.add_row(
            task.id,
            str(task.status),
            str(task.priority),
            confidence,
            str(task.review_status or ""),
            f"{task.updated_at:%Y-%m-%d %H:%M}",
            escape(preview),
        )
    console.print(table)


@tasks_app.command("bulk")
def tasks_bulk(
    project: Annotated[str, typer.Argument(help="Project id.")],
    action: Annotated[str, typer.Argument(help="cancel, requeue, set_priority or promote_gold.")],
    ids: Annotated[list[str] | None, typer.Option("--id", help="A task id (repeatable).")] = None,
    status: Annotated[str | None, typer.Option(help="Filter: tasks in this status.")] = None,
    meta: Annotated[list[str] | None, typer.Option(help="Filter: metadata key=value (repeatable).")] = None,
    search: Annotated[str | None, typer.Option(help="Filter: words in the task's data.")] = None,
    priority: Annotated[int | None, typer.Option(help="For set_priority.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """One action on tasks named by --id, or on every task matching the filters (asks first)."""
    from truthset.client import Client

    filters: dict[str, Any] | None = None
    if not ids:
        metadata = dict(item.split("=", 1) for item in meta or [] if "=" in item)
        filters = {k: v for k, v in {"status": status, "search": search, "metadata": metadata}.items() if v}
    with Client(url, api_key) as client:
        counted = client.tasks.bulk(project, action, ids=ids or None, filter=filters, priority=priority, dry_run=True)
        if not yes and not typer.confirm(f"{action} on {counted.matched} tasks?"):
            raise typer.Exit(1)
        done = client.tasks.bulk(project, action, ids=ids or None, filter=filters, priority=priority)
    console.print(f"{done.matched} tasks matched: {done.changed} changed, {done.skipped} skipped")


@tasks_app.command("history")
def tasks_history(
    task: Annotated[str, typer.Argument(help="Task id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Every step of a task in time order: leases, responses, completion, refits, reviews."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        steps = client.tasks.history(task)
    table = Table("when (UTC)", "step", "worker", "details")
    for step in steps:
        details = _json_line(step.data) if step.data else ""
        table.add_row(f"{step.at:%Y-%m-%d %H:%M:%S.%f}"[:-3], step.kind, escape(step.worker_name or ""), details)
    console.print(table)


@gold_app.command("import")
def gold_import(
    project: Annotated[str, typer.Argument(help="Project id.")],
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV: task_id or unique_id, then questions.")
    ],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Mark tasks gold from a CSV (all lines or none; a bad line is named by number)."""
    from truthset.client import Client, InvalidInputError

    try:
        with Client(url, api_key) as client:
            report = client.projects.import_gold(project, path)
    except InvalidInputError as exc:
        err_console.print(f"nothing was marked: {exc.message}")
        for error in (exc.details or {}).get("errors", [])[1:]:
            if "line" in error:
                err_console.print(f"  line {error['line']}: {error['message']}")
        raise typer.Exit(2) from None
    console.print(f"{report.received} lines: {report.marked} tasks marked gold, {report.updated} gold answers replaced")


@gold_app.command("list")
def gold_list(
    project: Annotated[str, typer.Argument(help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """The project's gold tasks with their answers (managers and above)."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        found = list(client.projects.gold(project))
    table = Table("task", "unique_id", "gold answer", "responses")
    for task in found:
        answer = _json_line(task.gold or {})
        table.add_row(task.id, escape(task.unique_id or ""), answer, str(task.response_count))
    console.print(table if found else "no gold task (truthset gold import PROJECT_ID gold.csv)")


@gold_app.command("unmark")
def gold_unmark(
    task: Annotated[str, typer.Argument(help="Task id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """A gold task becomes an ordinary task again: back in the queue, or completed if it has its judgments."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        done = client.tasks.unmark_gold(task)
    console.print(f"task {done.id} is no longer gold: {done.status}")


# --- predictions (through the API) ---

#: Question types whose CSV answer cell is JSON (a number, a list, an object); others are text.
_JSON_CELL_TYPES = frozenset({"number", "rating", "labels", "rubric", "spans", "boxes", "polygons", "ranking"})


def _prediction_lines(path: Path, json_questions: set[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, prediction) from a JSONL or CSV file; a line that cannot be read gives its error text."""
    import csv

    import orjson

    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"question", "answer", "score"} - set(reader.fieldnames or ())
            if missing or not {"task_id", "unique_id"} & set(reader.fieldnames or ()):
                yield 1, "the header needs task_id or unique_id, question, answer and score"
                return
            for row in reader:
                yield reader.line_num, _csv_prediction(row, json_questions)
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    yield number, f"invalid JSON: {exc}"
                    continue
                yield number, value if isinstance(value, dict) else "a line must be a JSON object"


def _csv_prediction(row: dict[str, str], json_questions: set[str]) -> dict[str, Any] | str:
    import orjson

    item: dict[str, Any] = {k: v for k in ("task_id", "unique_id") if (v := (row.get(k) or "").strip())}
    item["question"] = row.get("question") or ""
    answer = row.get("answer") or ""
    try:
        item["answer"] = orjson.loads(answer) if item["question"] in json_questions else answer
        item["score"] = float(row.get("score") or "")
    except (orjson.JSONDecodeError, ValueError) as exc:
        return f"answer or score: {exc}"
    return item


@predictions_app.command("import")
def predictions_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL, or CSV (.csv).")],
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    model: Annotated[str, typer.Option("--model", help="Model name.")],
    version: Annotated[str, typer.Option("--version", help="Model version (each version is its own worker).")],
    on_error: Annotated[
        str, typer.Option("--on-error", help="reject (store nothing if a line is bad) or skip.")
    ] = "reject",
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Upload a model version's predictions: task_id or unique_id, question, answer, score per line."""
    from truthset.client import Client, InvalidInputError

    if on_error not in ("reject", "skip"):
        raise typer.BadParameter("--on-error must be reject or skip")
    with Client(url, api_key) as client:
        spec = client.projects.get(project).spec
        json_questions = {q["name"] for q in spec.get("questions", []) if q.get("type") in _JSON_CELL_TYPES}
        lines, items, bad = [], [], []
        for number, item in _prediction_lines(path, json_questions):
            if isinstance(item, str):
                bad.append((number, item))
            else:
                lines.append(number)
                items.append(item)
        if bad and on_error == "reject":
            _print_prediction_errors(bad, "nothing was stored")
            raise typer.Exit(2)
        try:
            report = client.upload_predictions(project, items, model=model, version=version, on_error=on_error)
        except InvalidInputError as exc:
            errors = [(lines[e["index"]], e["message"]) for e in (exc.details or {}).get("errors", []) if "index" in e]
            _print_prediction_errors(bad + errors, "refused" if errors else exc.message)
            raise typer.Exit(2) from None
    refused = bad + [(lines[e.index], f"{e.field}: {e.message}") for e in report.errors]
    console.print(
        f"{len(items) + len(bad)} lines for {escape(report.model)}: {report.stored} predictions stored "
        f"({report.responses_created} tasks), {report.unchanged} unchanged, {report.invalid + len(bad)} refused"
    )
    if refused:
        _print_prediction_errors(refused, "skipped")


def _print_prediction_errors(errors: list[tuple[int, str]], what: str) -> None:
    err_console.print(f"{len(errors)} bad line{'s' if len(errors) != 1 else ''} ({what}):")
    for number, message in sorted(errors)[:20]:
        err_console.print(f"  line {number}: {escape(message)}")


# --- jobs (through the API) ---


@jobs_app.command("list")
def jobs_list(
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only jobs in this status: queued, running, succeeded, failed, canceled.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (newest first).")] = 50,
) -> None:
    """List jobs, newest first."""
    from itertools import islice

    from truthset.client import Client

    # an id is what a reader copies into the next command: never wrapped or cut, whatever the width
    id_column = Column("id", no_wrap=True, min_width=24)
    table = Table(id_column, "kind", "status", "progress", "attempts", "created", "error")
    with Client(url, api_key) as client:
        for job in islice(client.jobs.list(kind=kind, status=status, page_size=min(limit, 100)), limit):
            table.add_row(
                job.id,
                job.kind,
                str(job.status),
                _job_progress(job),
                f"{job.attempts}/{job.max_attempts}",
                str(job.created_at)[:19],
                escape((job.error or "")[:60]),
            )
    console.print(table)


def _job_progress(job: Any) -> str:
    if job.progress.total:
        return f"{job.progress.done}/{job.progress.total}"
    return str(job.progress.done) if job.progress.done else "-"


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    wait: Annotated[bool, typer.Option("--wait", help="Follow its progress until it ends.")] = False,
) -> None:
    """Show one job (with --wait: a progress bar until it ends; exit status 1 unless it succeeded)."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        if wait:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, TimeElapsedColumn(), console=err_console) as progress:
                bar = progress.add_task(f"job {job_id}", total=None)

                def show(job: Any) -> None:
                    progress.update(bar, completed=job.progress.done, total=job.progress.total, description=job.kind)

                job = client.jobs.wait(job_id, progress=show)
        else:
            job = client.jobs.get(job_id)
    console.print_json(job.model_dump_json())
    if wait and job.status != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Cancel a job: a queued one never runs, a running one stops at its next progress report."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        job = client.jobs.cancel(job_id)
    console.print(f"job {job.id} is {job.status}")


# --- aggregate (quality engine) ---


@app.command("aggregate")
def aggregate(
    answers: Annotated[Path, typer.Argument(help="Crowd CSV with header task,worker,label.", exists=True)],
    method: Annotated[
        str, typer.Option(help="mv, wawa, ds, ods, glad, mace (labels); mean, median, bias (numbers).")
    ] = "ds",
    truth: Annotated[Path | None, typer.Option(help="CSV task,label: print accuracy and calibration (ECE).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write task,label,confidence to this CSV.")] = None,
) -> None:
    """Aggregate a crowd CSV offline (no server): one answer and a calibrated confidence per task."""
    from rich.progress import SpinnerColumn

    from truthset import quality

    if method not in quality.METHODS:
        raise typer.BadParameter(f"choose one of {', '.join(quality.METHODS)}", param_hint="--method")
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        reading = progress.add_task("reading", total=answers.stat().st_size)
        rows = quality.read_answers_csv(answers, progress=lambda n: progress.advance(reading, n))
        progress.update(reading, completed=answers.stat().st_size)
        progress.add_task(f"fitting {method} on {len(rows[0]):,} answers", total=None)
        model = quality.make_aggregator(method).fit(rows)
    probas = getattr(model, "probas_", None)
    table = Table(title=f"truthset aggregate --method {method}")
    for name in ("answers", "tasks", "workers"):
        table.add_column(name, justify="right")
    table.add_row(f"{len(rows[0]):,}", f"{len(model.labels_):,}", f"{len(set(rows[1].tolist())):,}")
    console.print(table)
    if truth is not None:
        gold = quality.read_truth_csv(truth)
        numeric = method in ("mean", "median", "bias")
        ev = quality.evaluate_numeric(model.labels_, gold) if numeric else quality.evaluate(model.labels_, probas, gold)
        scores = Table(title=f"against {truth.name}")
        for name in ("tasks with truth", "accuracy", "ECE", "mean confidence", "MAE"):
            scores.add_column(name, justify="right")
        fmt = lambda x: "-" if x is None else f"{x:.4f}"  # noqa: E731
        scores.add_row(str(ev.n_evaluated), fmt(ev.accuracy), fmt(ev.ece), fmt(ev.mean_confidence), fmt(ev.mae))
        console.print(scores)
    if out is not None:
        count = quality.write_results_csv(out, model.labels_, probas)
        err_console.print(f"wrote {count} results to {out}")


# --- end aggregate ---


# --- webhooks (through the API) ---


@webhooks_app.command("create")
def webhooks_create(
    target: Annotated[str, typer.Argument(metavar="URL", help="Where deliveries are POSTed (http or https).")],
    event: Annotated[
        list[str],
        typer.Option(
            "--event",
            help="An event to deliver (repeat): task.completed, batch.completed, response.created, review.done, "
            "export.ready, model.suspended, project.deleted.",
        ),
    ],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    project: Annotated[str | None, typer.Option(help="Only this project's events (default: every project).")] = None,
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
) -> None:
    """Subscribe URL to events; prints the webhook with its signing secret (shown this once)."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        created = client.webhooks.create(target, event, project_id=project, description=description)
    console.print_json(created.model_dump_json())
    err_console.print("keep the secret: it is shown only now (truthset webhooks rotate-secret makes a new one)")


@webhooks_app.command("list")
def webhooks_list(
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    project: Annotated[str | None, typer.Option(help="Only this project's webhooks.")] = None,
) -> None:
    """List the organization's webhooks."""
    from truthset.client import Client

    table = Table(Column("id", no_wrap=True, min_width=24), "url", "events", "project", "active")
    with Client(url, api_key) as client:
        for webhook in client.webhooks.list(project_id=project):
            events = ", ".join(str(event) for event in webhook.events)
            table.add_row(webhook.id, escape(webhook.url), events, webhook.project_id or "all", str(webhook.active))
    console.print(table)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    webhook_id: Annotated[str, typer.Argument(help="Webhook id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    status: Annotated[
        str | None, typer.Option(help="Only deliveries in this status: pending, delivered, failed.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (newest first).")] = 50,
) -> None:
    """List a webhook's deliveries, newest first."""
    from itertools import islice

    from truthset.client import Client

    table = Table(
        Column("id", no_wrap=True, min_width=24), "event", "status", "attempts", "last code", "created", "error"
    )
    with Client(url, api_key) as client:
        for delivery in islice(client.webhooks.deliveries(webhook_id, status=status, page_size=min(limit, 100)), limit):
            table.add_row(
                delivery.id,
                str(delivery.event),
                str(delivery.status),
                str(delivery.attempts),
                str(delivery.last_status_code or "-"),
                str(delivery.created_at)[:19],
                escape((delivery.last_error or "")[:60]),
            )
    console.print(table)


@webhooks_app.command("replay")
def webhooks_replay(
    delivery_id: Annotated[str, typer.Argument(help="Delivery id (from `truthset webhooks deliveries`).")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Send a delivered or failed delivery again (same id and body, a new retry window)."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        delivery = client.webhooks.replay(delivery_id)
    console.print(f"delivery {delivery.id} is {delivery.status}: it will be sent again")


@webhooks_app.command("rotate-secret")
def webhooks_rotate_secret(
    webhook_id: Annotated[str, typer.Argument(help="Webhook id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Make a new signing secret (printed this once); the old one stops at once."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        rotated = client.webhooks.rotate_secret(webhook_id)
    console.print(rotated.secret)


@webhooks_app.command("delete")
def webhooks_delete(
    webhook_id: Annotated[str, typer.Argument(help="Webhook id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Delete a webhook with its deliveries."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        client.webhooks.delete(webhook_id)
    console.print(f"webhook {webhook_id} deleted")


# --- the built-in model (through the API) ---

models_app = typer.Typer(help="The built-in text model (train, list versions) and the LLM labeler (through the API).")
app.add_typer(models_app, name="models", no_args_is_help=True)


@models_app.command("train")
def models_train(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    question: Annotated[str, typer.Option("--question", help="A text label or labels question of the project.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job; show the version and its metrics.")] = False,
) -> None:
    """Train the built-in text model on the project's trusted results; then it predicts the waiting tasks."""
    job = _run_job(lambda client: client.models.train(project, question), url, api_key, wait=wait)
    if job is not None:
        _print_training(job.result or {})


def _run_job(start: Callable[[Client], JobOut], url: str, api_key: str, *, wait: bool) -> JobOut | None:
    """Start a job through the API and say so; with ``wait``, follow it to its end and return it (exit
    status 1, with the error, unless it succeeded)."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        job = start(client)
        console.print(f"{job.kind} job {job.id}: {job.status}")
        if not wait:
            return None
        job = client.jobs.wait(job.id)
    if job.error or job.status != "succeeded":
        console.print(f"{job.kind} job {job.id}: {job.status}" + (f": {escape(job.error)}" if job.error else ""))
        raise typer.Exit(1)
    return job


@media_app.command("list")
def media_list(
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    filename: Annotated[
        str | None, typer.Option(help="Only images whose file name contains this, ignoring case.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (newest first).")] = 50,
) -> None:
    """List the organization's uploaded images, newest first (managers and up)."""
    from itertools import islice

    from truthset.client import Client

    # the reference is what a reader copies into a task's image field: never wrapped or cut
    table = Table(Column("reference", no_wrap=True, min_width=30), "file name", "type", "pixels", "size", "uploaded")
    with Client(url, api_key) as client:
        for image in islice(client.list_media(filename=filename, page_size=min(limit, 100)), limit):
            pixels = f"{image.width}x{image.height}" if image.width and image.height else "-"
            table.add_row(
                image.reference,
                escape(image.filename),
                image.content_type,
                pixels,
                readable_size(image.size),
                str(image.created_at)[:19],
            )
    console.print(table)


@media_app.command("delete")
def media_delete(
    media_id: Annotated[str, typer.Argument(help="The image's id (its reference without media:).")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Remove an uploaded image that no task names, at once (owners, admins, or its uploader)."""
    from truthset.client import Client
    from truthset.questions import MEDIA_PREFIX

    with Client(url, api_key) as client:
        client.delete_media(media_id.removeprefix(MEDIA_PREFIX))
    console.print(f"deleted image {escape(media_id)}")


@media_app.command("prune")
def media_prune(
    older_than_hours: Annotated[
        float, typer.Option(min=0, help="Only images uploaded more than this many hours ago.")
    ] = 24.0,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its end.")] = False,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Remove, for good, the uploaded images no task names (owners, admins): a media.prune job."""
    job = _run_job(lambda client: client.prune_media(older_than_hours), url, api_key, wait=wait)
    if job is not None:
        result = job.result or {}
        console.print(
            f"removed {result.get('media_removed', 0)} of {result.get('media_checked', 0)} images"
            f" ({result.get('files_removed', 0)} files, {_mib(result.get('bytes_removed', 0))})"
            f" after reading {result.get('tasks_read', 0)} tasks"
        )


@queue_app.command("list")
def queue_list(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many tasks.")] = 20,
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """The tasks still short of workers, in the order the queue serves them (priority, rank, oldest)."""
    from truthset.client import Client

    task_id = Column("task", overflow="fold")  # folded, never cut short: it is copied whole
    table = Table("#", task_id, "unique_id", "priority", "rank", "responses", "overlap", "confidence")
    with Client(url, api_key) as client:
        for place, task in enumerate(itertools.islice(client.queue.list(project, page_size=min(limit, 200)), limit)):
            table.add_row(
                str(place + 1),
                task.id,
                escape(task.unique_id or ""),
                str(task.priority),
                str(task.queue_rank),
                str(task.response_count),
                str(task.overlap),
                "" if task.confidence is None else f"{task.confidence:.3f}",
            )
    console.print(table if table.row_count else "nothing waiting: every task has the workers it asks for")


@queue_app.command("rerank")
def queue_rerank(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job and say what it changed.")] = False,
) -> None:
    """Re-rank the queue now by the policy's ordering (a queue.rerank job; managers and above)."""
    job = _run_job(lambda client: client.queue.rerank(project), url, api_key, wait=wait)
    if job is None:
        return
    result = job.result or {}
    console.print(
        f"ordering {result.get('ordering')}: {result.get('ranked', 0)} tasks ranked, "
        f"{result.get('changed', 0)} ranks changed"
    )


def _print_training(result: dict[str, Any]) -> None:
    status = result.get("status")
    if status == "not_enough_data":
        console.print(escape(str(result.get("message", "not enough data"))))
        raise typer.Exit(1)
    metrics, predicted = result.get("metrics") or {}, result.get("predictions") or {}
    console.print(f"{status}: {escape(str(result.get('model')))} ({metrics.get('n_examples')} labeled tasks)")
    console.print(
        f"accuracy {metrics.get('accuracy', 0):.3f} (majority baseline {metrics.get('baseline_accuracy', 0):.3f}), "
        f"ECE {metrics.get('ece', 0):.3f}, {escape(str(metrics.get('method', '')))}"
    )
    if metrics.get("verified_examples"):
        console.print(
            f"on the {metrics['verified_examples']} gold and reviewed labels alone: "
            f"accuracy {metrics['verified_accuracy']:.3f}, ECE {metrics['verified_ece']:.3f}"
        )
    console.print(
        f"predictions: {predicted.get('stored', 0)} stored, {predicted.get('unchanged', 0)} unchanged, "
        f"{predicted.get('invalid', 0)} refused"
    )
    on_gold = result.get("gold_predictions") or {}
    if on_gold.get("stored") or on_gold.get("unchanged"):
        console.print(
            f"gold tasks graded out of fold: {on_gold.get('stored', 0)} stored, {on_gold.get('unchanged', 0)} unchanged"
        )


@models_app.command("list")
def models_list(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """The project's trained model versions with their metrics, newest first."""
    from truthset.client import Client

    version = Column("version", overflow="fold")  # folded, never cut short: it is copied whole
    table = Table(version, "question", "examples", "accuracy", "verified", "baseline", "ECE", "created")
    with Client(url, api_key) as client:
        for model in client.models.list(project):
            m = model.metrics
            table.add_row(
                escape(model.version),
                escape(model.question),
                str(m.get("n_examples", "")),
                f"{m.get('accuracy', 0):.3f}",
                f"{m['verified_accuracy']:.3f} ({m['verified_examples']})" if m.get("verified_examples") else "-",
                f"{m.get('baseline_accuracy', 0):.3f}",
                f"{m.get('ece', 0):.3f}",
                model.created_at.isoformat(timespec="seconds"),
            )
    console.print(table)


@models_app.command("llm-label")
def models_llm_label(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    question: Annotated[str, typer.Option("--question", help="The question the model answers.")],
    base_url: Annotated[str, typer.Option("--base-url", help="The endpoint up to /v1 (OpenAI-compatible).")],
    model: Annotated[str, typer.Option("--model", help="The model's name on that server.")],
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many tasks (gold first).")] = None,
    version: Annotated[str | None, typer.Option("--version", help="Model worker version (default: derived).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job; print what it stored and spent.")] = False,
    llm_api_key: Annotated[
        str,
        typer.Option(envvar="TRUTHSET_LLM_API_KEY", help="The endpoint's API key, if any.", show_default=False),
    ] = "",
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Label the project's gold and pending tasks with an LLM: its valid answers become predictions of llm:<model>."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        job = client.start_llm_labeling(
            project,
            question=question,
            base_url=base_url,
            model=model,
            limit=limit,
            version=version,
            api_key=llm_api_key or None,
        )
        console.print(f"llm labeling job {job.id} ({escape(job.payload.get('worker', ''))}): {job.status}")
        if not wait:
            return
        job = _follow_model_job(client, job.id)
    result = job.result or {}
    if result:
        usage = result.get("usage") or {}
        console.print(
            f"{result.get('asked', 0)} tasks asked: {result.get('stored', 0)} predictions stored, "
            f"{result.get('invalid', 0)} invalid answers, {result.get('failed', 0)} failed calls; "
            f"tokens: {usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} completion"
        )
    _end_model_job(job, "llm labeling")


@models_app.command("server-predict")
def models_server_predict(
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    question: Annotated[str, typer.Option("--question", help="The question the model answers.")],
    base_url: Annotated[str, typer.Option("--base-url", help="The model server's root (/health, /train, /predict).")],
    name: Annotated[str | None, typer.Option("--name", help="Model worker name (default: /health's).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many tasks (gold first).")] = None,
    train: Annotated[bool, typer.Option("--train/--no-train", help="First send /train the new results.")] = True,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job; print what it sent and stored.")] = False,
    server_api_key: Annotated[
        str,
        typer.Option(
            envvar="TRUTHSET_MODEL_SERVER_API_KEY", help="The model server's API key, if any.", show_default=False
        ),
    ] = "",
    url: UrlOption = "http://127.0.0.1:8000",
    api_key: KeyOption = "",
) -> None:
    """Train and ask an external model server: its valid answers become predictions of <name>@<version>."""
    from truthset.client import Client

    with Client(url, api_key) as client:
        job = client.start_model_server_predictions(
            project,
            question=question,
            base_url=base_url,
            name=name,
            limit=limit,
            api_key=server_api_key or None,
            train=train,
        )
        console.print(f"model server job {job.id}: {job.status}")
        if not wait:
            return
        job = _follow_model_job(client, job.id)
    result = job.result or {}
    if result:
        trained = result.get("trained") or {}
        console.print(
            f"{escape(str(result.get('model')))}: {trained.get('sent', 0)} results sent to /train "
            f"({trained.get('accepted', 0)} accepted); {result.get('asked', 0)} tasks asked: "
            f"{result.get('stored', 0)} predictions stored, {result.get('invalid', 0)} invalid answers, "
            f"{result.get('abstained', 0)} abstained"
        )
    _end_model_job(job, "model server")


def _end_model_job(job: Any, label: str) -> None:
    """After a model job's summary: the first problems it met, and exit status 1 unless it succeeded."""
    for problem in (job.result or {}).get("problems", [])[:10]:
        err_console.print(f"  task {problem['task_id']}: {problem['kind']}: {escape(problem['reason'])}")
    if job.status != "succeeded":
        err_console.print(f"{label} job {job.id} {job.status}: {escape(job.error or '')}")
        raise typer.Exit(1)


def _follow_model_job(client: Any, job_id: str) -> Any:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"))
    with Progress(*columns, TimeElapsedColumn(), console=err_console) as progress:
        bar = progress.add_task("labeling", total=None)

        def show(job: Any) -> None:
            progress.update(bar, completed=job.progress.done, total=job.progress.total)

        return client.jobs.wait(job_id, progress=show)


# --- one way to name the project ------------------------------------------------------------------


class _ProjectFirst(TyperCommand):
    """A command whose project id is its first argument also takes it as ``--project ID``.

    ``truthset import`` and ``predictions import`` name the project with ``--project``; the commands
    that manage a project take it first (``truthset gold import PROJECT FILE``). Users mix the two,
    and Click's answer was only "No such option: --project". The option is moved to the front before
    Click parses, so both spellings work for every such command (Click has no "argument or option").
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # by kind, not class: Typer carries its own copy of Click's classes
        takes_it_first = any(p.param_type_name == "argument" and p.name == "project" for p in self.params)
        if takes_it_first:
            args = _project_to_front(args)
        return super().parse_args(ctx, args)


def _project_to_front(args: list[str]) -> list[str]:
    """``[FILE, --project, P]`` or ``[FILE, --project=P]`` as ``[P, FILE]`` (anything else as it is)."""
    for i, arg in enumerate(args):
        if arg == "--":
            break  # what follows is positional by request
        if arg.startswith("--project="):
            return [arg.removeprefix("--project="), *args[:i], *args[i + 1 :]]
        if arg == "--project" and i + 1 < len(args):
            return [args[i + 1], *args[:i], *args[i + 2 :]]
    return args


def _project_option_everywhere(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = _ProjectFirst
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _project_option_everywhere(group.typer_instance)


_project_option_everywhere(app)
