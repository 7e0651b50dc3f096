"""The ``fileregistry`` command line (Typer). Commands are thin wrappers over the services."""

from __future__ import annotations

import asyncio
import sys

import typer

from fileregistry.cli import sources as sources_cli
from fileregistry.cli import vfsgen
from fileregistry.cli.fs import fs_app
from fileregistry.cli.users import bootstrap_admin, token_app, user_app
from fileregistry.config import Settings
from fileregistry.errors import AppError

app = typer.Typer(help="fileregistry: SFTP landing-zone monitor and virtual file system catalog.",
                  no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(fs_app, name="fs")
sources_cli.register(app)  # source add/list/remove, scan, status, mark
vfsgen.register(app)  # vfs-from-dir, vfs-from-sftp


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from fileregistry.app import create_app
    from fileregistry.observability.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    bootstrap_admin(settings, host, port)
    # A wrong or malformed FILEREGISTRY_SECRET_KEY: one clear line and exit 1, before uvicorn starts.
    from fileregistry.cli.local import run_local

    async def _nothing(_local) -> None:
        return None

    run_local(_nothing, settings)
    # log_config=None: uvicorn keeps our handler; access_log=False: our middleware logs each request
    # (with its request id, without query strings).
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower(),
                proxy_headers=False, log_config=None, access_log=False)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Create or upgrade the schema with Alembic migrations."""
    from fileregistry.db import create_nullpool_engine
    from fileregistry.migrate import current_revision, upgrade

    async def run() -> str | None:
        engine = create_nullpool_engine(Settings().resolved_database_url)
        try:
            await upgrade(engine, revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    rev = asyncio.run(run())
    typer.echo(f"database at revision {rev}")


def main() -> None:
    """Every failure is one ``error: ...`` line on stderr and exit code 1: our errors, and the
    command line's own (a missing option, a bad value), which Click would print as a usage box with
    exit code 2. ``--help`` and a bare group still print their help."""
    Abort = typer.Abort
    try:  # recent Typer vendors Click; older releases use Click itself
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click.exceptions import ClickException, NoArgsIsHelpError

    try:
        code = app(standalone_mode=False)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except NoArgsIsHelpError as exc:
        exc.show()  # a group called without a command: its help, as before
        sys.exit(2)
    except ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(1)
    except Abort:  # Ctrl-C at a prompt
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
