"""``fileregistry source ...``, ``scan``, ``status`` and ``mark``: stored SFTP sources from the shell.

Like ``fs``/``user``/``token``, these work directly on the local data dir and database
(``FILEREGISTRY_DATA_DIR`` / ``FILEREGISTRY_DATABASE_URL``) through the service functions the server
uses; no server or token is needed. A CLI scan and a server's scan of the same connection never
overlap: ``monitor.scan`` holds the database lease (a CLI scan waits up to ``scan_wait_timeout``).
Secrets never reach argv or any output: the password is read from stdin, a key from a file.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from fileregistry.errors import InvalidInput

source_app = typer.Typer(help="Stored SFTP sources: add, list, remove.", no_args_is_help=True)

MARK_STATES = ("processing", "completed", "error")
MAX_KEY_FILE_BYTES = 64 * 1024  # private keys are a few KiB; anything larger is not one


# --------------------------------------------------------------------------- formatting


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover


def fmt_seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 120 else f"{s / 60:.1f} min"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain aligned columns (never truncated or wrapped, so scripts can grep them)."""
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _echo_json(data: Any) -> None:
    import orjson

    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


# --------------------------------------------------------------------------- helpers


def _check_name(name: str) -> str:
    from fileregistry.sources.service import check_name

    return check_name(name)


def _read_password() -> str:
    """The first line of stdin (a TTY gets a prompt that does not echo)."""
    if sys.stdin is None:
        raise InvalidInput("--password-stdin: no stdin")
    if sys.stdin.isatty():
        password = getpass.getpass("SFTP password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidInput("--password-stdin: empty password on stdin")
    return password


def _read_key_file(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"key file {str(path)!r} could not be read: {exc.strerror or type(exc).__name__}") from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if not text.strip() or len(data) > MAX_KEY_FILE_BYTES:
        raise InvalidInput(f"key file {str(path)!r} is not an OpenSSH or PEM private key")
    return text


def _config(fields: dict[str, Any]):
    """An SFTPConfig; validation problems become one line naming the fields (never their values)."""
    from pydantic import ValidationError

    from fileregistry.sftp.schemas import SFTPConfig

    try:
        return SFTPConfig.model_validate(fields)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in err.get("loc", ())) or "config"
            problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
        raise InvalidInput("; ".join(problems)) from None


def auth_kind(config: dict[str, Any]) -> str:
    kinds = []
    if config.get("private_key"):
        kinds.append("private key")
    if config.get("key_path"):
        kinds.append(f"key file {config['key_path']}")
    if config.get("password"):
        kinds.append("password")
    return ", ".join(kinds) or "-"


# --------------------------------------------------------------------------- source add/list/remove


@source_app.command("add")
def source_add(
    name: str = typer.Argument(..., help="Source name: letters, digits, '.', '_' or '-'."),
    host: str = typer.Option(..., "--host", help="SFTP server host name or IP address."),
    username: str = typer.Option(..., "--username", help="SFTP user."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from stdin (first line; a terminal prompts)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="Private key file (unencrypted OpenSSH or PEM); "
                                         "its text is stored, encrypted, so the server does not need the file."),
    port: int = typer.Option(22, "--port", help="SSH port."),
    remote_path: str = typer.Option("/", "--remote-path", help="Directory holding new/processing/completed/error."),
    interval: int | None = typer.Option(None, "--interval", help="Scan every SECONDS (a running server's "
                                        "scheduler does it); default: scans only when asked."),
    host_key: str | None = typer.Option(None, "--host-key", help="Expected host key: an OpenSSH public key line "
                                        "or 'SHA256:...'. Without it the first key seen is trusted and stored."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a source of that name."),
) -> None:
    """Store an SFTP source (its password or key encrypted with the secret key)."""
    from fileregistry.cli.local import run_local
    from fileregistry.errors import Conflict
    from fileregistry.sftp.remote_keys import load_client_keys, parse_host_key
    from fileregistry.sources import service
    from fileregistry.sources.routes import MAX_INTERVAL, MIN_INTERVAL

    _check_name(name)
    if not password_stdin and key_file is None:
        raise InvalidInput("an authentication method is required: --password-stdin or --key-file PATH")
    if interval is not None and not MIN_INTERVAL <= interval <= MAX_INTERVAL:
        raise InvalidInput(f"--interval: seconds from {MIN_INTERVAL} to {MAX_INTERVAL}")
    fields: dict[str, Any] = {"host": host, "username": username, "port": port, "remote_path": remote_path,
                              "host_key": host_key}
    if key_file is not None:
        fields["private_key"] = _read_key_file(key_file)
    if password_stdin:
        fields["password"] = _read_password()
    config = _config(fields)
    if host_key is not None:
        parse_host_key(host_key)
    if key_file is not None:
        try:
            load_client_keys(config)
        except InvalidInput:
            raise InvalidInput(f"key file {str(key_file)!r} is not an unencrypted OpenSSH or PEM private key "
                               "(RSA, ECDSA or Ed25519)") from None

    async def go(local) -> Any:
        if not replace:
            try:
                await service.get_source(local.sessions, local.cipher, name)
            except Exception as exc:  # noqa: BLE001 - only "not found" lets us go on
                if getattr(exc, "status_code", None) != 404:
                    raise
            else:
                raise Conflict(f"source {name!r} already exists; use --replace to overwrite it")
        return await service.put_source(local.sessions, local.cipher, name, config, interval)

    view = run_local(go)
    cfg = view.config
    typer.echo(f"source {view.source!r} saved: {cfg['username']}@{cfg['host']}:{cfg['port']} "
               f"{cfg['remote_path']} (auth: {auth_kind(cfg)}; "
               f"{'every ' + str(interval) + ' s' if interval else 'scans when asked'})")


@source_app.command("list")
def source_list(as_json: bool = typer.Option(False, "--json", help="JSON (secrets redacted).")) -> None:
    """List stored sources (never their secrets)."""
    from fileregistry.cli.local import run_local
    from fileregistry.sources import service

    views = run_local(lambda local: service.list_sources(local.sessions, local.cipher))
    if as_json:
        _echo_json([v.model_dump(mode="json") for v in views])
        return
    rows = []
    for v in views:
        c = v.config
        rows.append([v.source, f"{c['host']}:{c['port']}", c["username"], c["remote_path"],
                     f"{v.scan_interval_seconds} s" if v.scan_interval_seconds else "-", auth_kind(c),
                     "pinned" if c.get("host_key") else "first use"])
    typer.echo(table(["NAME", "HOST:PORT", "USER", "REMOTE PATH", "INTERVAL", "AUTH", "HOST KEY"], rows))


@source_app.command("remove")
def source_remove(name: str = typer.Argument(..., help="Source name.")) -> None:
    """Delete a stored source (its registry, scan history and mirror are kept)."""
    from fileregistry.cli.local import run_local
    from fileregistry.sources import service

    _check_name(name)
    run_local(lambda local: service.delete_source(local.sessions, name))
    typer.echo(f"source {name!r} removed")


# --------------------------------------------------------------------------- scan


class _Bar:
    """rich's progress bar on stderr, fed by monitor.scan's progress callback."""

    def __init__(self, source: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[bytes]}"), TimeElapsedColumn(),
            console=Console(stderr=True), transient=True,
        )
        self.task = self.progress.add_task(f"{source}: listing", total=None, bytes="")
        self.source = source

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, done: int, total: int, nbytes: int) -> None:
        self.progress.update(self.task, description=f"{self.source}: downloading", total=total, completed=done,
                             bytes=fmt_bytes(nbytes))


def _show_bar(quiet: bool) -> bool:
    return not quiet and sys.stdout.isatty() and sys.stderr.isatty()


def register(app: typer.Typer) -> None:
    """Add ``source`` and the top-level ``scan``, ``status`` and ``mark`` commands to ``app``."""
    app.add_typer(source_app, name="source")
    app.command("scan")(scan_cmd)
    app.command("status")(status_cmd)
    app.command("mark")(mark_cmd)


def scan_cmd(
    source: str = typer.Argument(..., help="Stored source name."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the scan result as the API returns it."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Fail at once if a scan of it is running."),
) -> None:
    """Scan a source now: download what is new or changed in <remote_path>/new, then summarise.

    Files that failed are listed and retried by the next scan (the exit code stays 0)."""
    from fileregistry.cli.local import run_local
    from fileregistry.sftp import monitor
    from fileregistry.sources import service

    _check_name(source)
    bar = _Bar(source) if _show_bar(quiet) and not as_json else None

    async def go(local):
        config = await service.resolve_config(local.sessions, local.cipher, source)
        if bar is None:
            return await monitor.scan(config, settings=local.settings, sessions=local.sessions, trigger="cli",
                                      wait=not no_wait)
        with bar:
            return await monitor.scan(config, settings=local.settings, sessions=local.sessions, trigger="cli",
                                      wait=not no_wait, progress=bar)

    result = run_local(go)
    if as_json:
        _echo_json(result.model_dump(mode="json"))
        return
    updated = set(result.updated_files)
    nbytes = sum(f.size for f in result.new_files)
    typer.echo(f"scanned {source}: {result.total_files} files in new/, {len(result.new_files)} downloaded "
               f"({len(result.new_files) - len(updated)} new, {len(updated)} updated), "
               f"{len(result.failed_files)} failed, {len(result.removed_files)} gone from the server, "
               f"{fmt_bytes(nbytes)} in {fmt_seconds(result.scan_duration)}")
    if result.new_files:
        typer.echo("")
        typer.echo(table(["", "FILE", "SIZE", "MODIFIED"],
                         [["updated" if f.path in updated else "new", f.path, fmt_bytes(f.size),
                           fmt_time(f.modified)] for f in result.new_files]))
    if result.failed_files:
        typer.echo("")
        typer.echo(table(["", "FILE", "ERROR (retried by the next scan)"],
                         [["FAILED", f.path, f.error] for f in result.failed_files]))
    if result.removed_files:
        typer.echo("")
        typer.echo(table(["", "FILE (no longer on the server: unregistered)"],
                         [["REMOVED", name] for name in result.removed_files]))


# --------------------------------------------------------------------------- status


async def _newest(sessions, key: str, limit: int) -> list[Any]:
    from fileregistry.db import unit_of_work
    from fileregistry.sftp import registry

    async with unit_of_work(sessions) as s:
        return await registry.recently_changed(s, key, limit)


def status_cmd(
    source: str = typer.Argument(..., help="Stored source name."),
    limit: int = typer.Option(10, "--limit", help="How many of the most recently changed files to show."),
    as_json: bool = typer.Option(False, "--json", help="JSON."),
) -> None:
    """Files by state, the last scan, the schedule, and the most recently changed files."""
    from fileregistry.cli.local import run_local
    from fileregistry.sources import service

    _check_name(source)
    if limit < 0:
        raise InvalidInput("--limit must be 0 or more")

    async def go(local):
        found = await service.overview(local.sessions, [source])
        if not found:
            raise service.not_found(source)
        summary = found[0]
        return summary, await _newest(local.sessions, summary.connection_key, limit)

    summary, newest = run_local(go)
    files = [{"state": r.state, "name": r.name, "original_name": r.original_name, "size": r.size,
              "modified": r.remote_mtime, "last_changed": r.last_changed} for r in newest]
    if as_json:
        data = summary.model_dump(mode="json")
        data["newest_files"] = [
            {**f, "modified": fmt_iso(f["modified"]), "last_changed": fmt_iso(f["last_changed"])} for f in files
        ]
        _echo_json(data)
        return
    s = summary
    counts = ", ".join(f"{k} {v}" for k, v in s.counts.items())
    oldest = f" (oldest new since {fmt_time(s.oldest_new_at)})" if s.oldest_new_at else ""
    lines = [
        ["source", f"{s.name}: {s.username}@{s.host}:{s.port} {s.remote_path}"],
        ["files", counts + oldest],
    ]
    if s.last_scan is None:
        lines.append(["last scan", "never"])
    else:
        ls = s.last_scan
        outcome = (f"failed: {ls.error}" if ls.error else
                   f"ok: {ls.listed} listed, {ls.new_count} downloaded, {ls.failed_count} failed, "
                   f"{fmt_bytes(ls.bytes_downloaded)}")
        lines.append(["last scan", f"{fmt_time(ls.started_at)} ({ls.trigger or '-'}), "
                                   f"{fmt_seconds(ls.duration)}, {outcome}"])
    if s.scan_interval_seconds:
        lines.append(["schedule", f"every {s.scan_interval_seconds} s, next {fmt_time(s.next_scan_at)}"])
    else:
        lines.append(["schedule", "none (scans when asked)"])
    if s.consecutive_failures:
        lines.append(["failing", f"{s.consecutive_failures} scheduled scans in a row: {s.last_error or '-'}"])
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        typer.echo(f"{k.ljust(width)}  {v}")
    if files:
        typer.echo("")
        typer.echo(f"latest {len(files)} changed files:")
        typer.echo(table(["STATE", "NAME", "SIZE", "MODIFIED", "CHANGED"],
                         [[f["state"], f["name"], fmt_bytes(f["size"]), fmt_time(f["modified"]),
                           fmt_time(f["last_changed"])] for f in files]))


def fmt_iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


# --------------------------------------------------------------------------- mark


def mark_cmd(
    source: str = typer.Argument(..., help="Stored source name."),
    filename: str = typer.Argument(..., help="File name in its current state directory."),
    state: str = typer.Argument(..., help="processing (from new), completed or error (from processing)."),
) -> None:
    """Move one file: new -> processing, processing -> completed | error (server, mirror, registry).

    Prints the file's new name (processing adds a UTC timestamp)."""
    from fileregistry.cli.local import run_local
    from fileregistry.sftp import monitor
    from fileregistry.sources import service

    _check_name(source)
    if state not in MARK_STATES:
        raise InvalidInput(f"state must be one of {', '.join(MARK_STATES)} (got {state[:32]!r})")
    fn = {"processing": monitor.mark_processing, "completed": monitor.mark_completed,
          "error": monitor.mark_error}[state]

    async def go(local):
        config = await service.resolve_config(local.sessions, local.cipher, source)
        return await fn(config, filename, settings=local.settings, sessions=local.sessions)

    res = run_local(go)
    typer.echo(res.message, err=True)
    typer.echo(getattr(res, "new_filename", None) or filename)


__all__ = ["register", "source_app"]
