"""``fileregistry fs ...``: virtual file systems, directly on the local database (no server needed)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from fileregistry.config import Settings

T = TypeVar("T")
fs_app = typer.Typer(help="Virtual file systems: create, list, delete, upload, export.", no_args_is_help=True)


def _run(fn: Callable[[Any], Awaitable[T]]) -> T:
    from fileregistry.db import create_nullpool_engine
    from fileregistry.migrate import upgrade

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def go() -> T:
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            if settings.auto_migrate:
                await upgrade(engine)
            return await fn(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _uow(fn):
    from fileregistry.db import session_factory, unit_of_work

    async def inner(engine):
        async with unit_of_work(session_factory(engine)) as s:
            return await fn(s)
    return inner


@fs_app.command("create")
def fs_create(name: str = typer.Argument(..., help="Unique name."),
              delimiter: str = typer.Option("/", help="Path delimiter (one character).")) -> None:
    """Create a file system and print its id."""
    from fileregistry.vfs import store

    fs = _run(_uow(lambda s: store.create_fs(s, name, delimiter)))
    typer.echo(f"file system {fs['name']!r} created with id {fs['id']}")


@fs_app.command("list")
def fs_list() -> None:
    """List file systems."""
    from fileregistry.vfs import store

    for fs in _run(_uow(store.list_fs)):
        typer.echo(f"{fs['id']}\t{fs['name']}\tdelimiter {fs['delimiter']!r}")


@fs_app.command("delete")
def fs_delete(fs_id: int = typer.Argument(...)) -> None:
    """Delete a file system and all its entries."""
    from fileregistry.vfs import store

    _run(_uow(lambda s: store.delete_fs(s, fs_id)))
    typer.echo(f"file system {fs_id} deleted")


@fs_app.command("upload")
def fs_upload(
    fs_id: int = typer.Argument(...),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines file (upload format)."),
    dry_run: bool = typer.Option(False, help="Report the planned counts; change nothing."),
    skip_errors: bool = typer.Option(False, "--skip-errors", help="Apply the valid lines (on_error=skip)."),
) -> None:
    """Replace a file system's tree with FILE (same rules as the HTTP upload), with a progress bar.

    Runs in this process as a job recorded in the database (visible at /api/job/N/), leased like a
    server's jobs (a heartbeat while it runs). Ctrl-C marks the job failed, saying so; if this
    process is killed outright, a server takes the job over when its lease runs out."""
    from fileregistry.jobs.runner import run_here
    from fileregistry.vfs import service, store

    options = {"dry_run": dry_run, "on_error": "skip" if skip_errors else "fail", "spool": None}
    started: list[int] = []

    async def go(engine):
        from fileregistry.db import session_factory, unit_of_work

        sessions = session_factory(engine)
        async with unit_of_work(sessions) as s:
            await store.get_fs_for_upload(s, fs_id)

        async def work(job_id: int):
            started.append(job_id)
            with typer.progressbar(length=file.stat().st_size, label="processing", file=sys.stderr) as bar:
                return await service.run_upload(engine, fs_id, file, options,
                                                max_reported=Settings().vfs_max_reported_errors,
                                                progress=bar.update)

        return await run_here(sessions, service.KIND, fs_id, options, work)

    try:
        job_id, res = _run(go)
    except KeyboardInterrupt:
        if started:
            typer.echo(f"\njob {started[0]}: failed: interrupted (Ctrl-C); the file system was not partly "
                       "changed", err=True)
        raise typer.Exit(130) from None
    typer.echo(f"job {job_id}: {res.status}: {res.msg}")
    for issue in res.issues[:20]:
        typer.echo(f"  line {issue['line']}: {issue['severity']} {issue['code']} ({issue['field']}): "
                   f"{issue['message']}", err=True)
    if len(res.issues) > 20:
        typer.echo(f"  ... see /api/job_error/?job_id={job_id}", err=True)
    if res.status != "successful":
        raise typer.Exit(1)


@fs_app.command("export")
def fs_export(fs_id: int = typer.Argument(...),
              output: Path | None = typer.Option(None, "-o", "--output", help="File; stdout by default.")) -> None:
    """Write the tree as JSON Lines in the upload format."""
    from fileregistry.vfs import store

    async def go(engine) -> None:
        out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
        try:
            async for chunk in await store.open_export(engine, fs_id):
                out.write(chunk)
        finally:
            if output:
                out.close()
            else:
                out.flush()

    _run(go)


__all__ = ["fs_app"]
