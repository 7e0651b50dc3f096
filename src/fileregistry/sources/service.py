"""Use cases of the config store: put, get, list, delete, resolve a source name to its SFTPConfig.

Routes, the CLI, the scheduler and the UI call these; none of them sees a ciphertext.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from fileregistry.db import unit_of_work, utcnow
from fileregistry.errors import InvalidInput, NotFound
from fileregistry.sftp.names import connection_key
from fileregistry.sftp.schemas import SFTPConfig
from fileregistry.sources import store
from fileregistry.sources.crypto import SecretCipher
from fileregistry.sources.models import Source
from fileregistry.sources.schemas import (
    NAME_RE,
    NAME_RULE,
    REDACTED,
    SECRET_FIELDS,
    LastScan,
    SourceSummary,
    SourceView,
)

STATES = ("new", "processing", "completed", "error")


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        # repr() of a hostile name is safe: it escapes control characters; cap its length.
        raise InvalidInput(f"invalid source name {name[:64]!r}: {NAME_RULE}")
    return name


def not_found(name: str) -> NotFound:
    return NotFound(f"SFTP source {name[:128]!r} not found")


def _public(config: SFTPConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude=set(SECRET_FIELDS))


def _secrets(config: SFTPConfig) -> dict[str, str]:
    out = {}
    for f in SECRET_FIELDS:
        v = getattr(config, f)
        if v is not None and v.get_secret_value():
            out[f] = v.get_secret_value()
    return out


def _full_config(row: Source, cipher: SecretCipher) -> dict[str, Any]:
    data = orjson.loads(row.config_json)
    if row.secrets_encrypted:
        data.update(cipher.decrypt(row.secrets_encrypted))
    return data


def _view(row: Source, cipher: SecretCipher, include_secrets: bool) -> SourceView:
    if include_secrets:
        config = _full_config(row, cipher)
    else:
        # Which secrets are set is kept in clear, so a redacted view never decrypts anything.
        config = orjson.loads(row.config_json)
        for f in config.get("_secret_fields", []):
            config[f] = REDACTED
    config.pop("_secret_fields", None)
    for f in SECRET_FIELDS:
        config.setdefault(f, None)
    return SourceView(category=row.name, source=row.name, config=config,
                      scan_interval_seconds=row.scan_interval_seconds,
                      created_at=row.created_at, updated_at=row.updated_at)


def _merge_placeholders(config: SFTPConfig, existing: Source | None, cipher: SecretCipher) -> SFTPConfig:
    """A secret sent back as the redaction placeholder keeps the stored value (GET, edit, PUT works)."""
    placeholders = [f for f in SECRET_FIELDS
                    if getattr(config, f) is not None and getattr(config, f).get_secret_value() == REDACTED]
    if not placeholders:
        return config
    stored = cipher.decrypt(existing.secrets_encrypted) if existing and existing.secrets_encrypted else {}
    missing = [f for f in placeholders if f not in stored]
    if missing:
        raise InvalidInput(f"{', '.join(missing)}: {REDACTED!r} is the redaction placeholder and no stored "
                           "value exists to keep; send the real value")
    data = config.model_dump()
    for f in SECRET_FIELDS:
        v = data.get(f)
        data[f] = v.get_secret_value() if v is not None else None
    for f in placeholders:
        data[f] = stored[f]
    return SFTPConfig.model_validate(data)


async def put_source(sessions, cipher: SecretCipher, name: str, config: SFTPConfig,
                     scan_interval_seconds: int | None) -> SourceView:
    """Create or replace the config stored under ``name``."""
    check_name(name)
    now = utcnow()
    for _ in range(2):
        try:
            async with unit_of_work(sessions) as s:
                row = await store.get(s, name, for_update=True)
                config = _merge_placeholders(config, row, cipher)
                secrets = _secrets(config)
                public = _public(config) | {"_secret_fields": sorted(secrets)}
                if row is None:
                    row = Source(name=name, created_at=now, consecutive_failures=0)
                    s.add(row)
                row.connection_key = connection_key(config.host, config.remote_path)
                row.config_json = orjson.dumps(public).decode()
                row.secrets_encrypted = cipher.encrypt(secrets) if secrets else None
                row.scan_interval_seconds = scan_interval_seconds
                row.updated_at = now
                # A new or replaced config is due at once (a fixed password is tried now, not after
                # the backoff); the scheduler adds the interval after that scan.
                row.next_scan_at = None if scan_interval_seconds is None else now
                row.consecutive_failures = 0
                row.last_error = None
                await s.flush()
                return _view(row, cipher, include_secrets=False)
        except IntegrityError:  # created concurrently by another request: replace it instead
            continue
    raise InvalidInput(f"source {name!r} was changed concurrently; retry")  # pragma: no cover


async def delete_source(sessions, name: str) -> None:
    async with unit_of_work(sessions) as s:
        if not await store.remove(s, name):
            raise not_found(name)


async def get_source(sessions, cipher: SecretCipher, name: str, *, include_secrets: bool = False) -> SourceView:
    async with unit_of_work(sessions) as s:
        row = await store.get(s, name)
        if row is None:
            raise not_found(name)
        return _view(row, cipher, include_secrets)


async def list_sources(sessions, cipher: SecretCipher, *, include_secrets: bool = False) -> list[SourceView]:
    async with unit_of_work(sessions) as s:
        return [_view(r, cipher, include_secrets) for r in await store.all_sources(s)]


async def resolve_config(sessions, cipher: SecretCipher, name: str) -> SFTPConfig:
    """The stored SFTPConfig of ``name``, secrets included (for the SFTP calls, never for output)."""
    async with unit_of_work(sessions) as s:
        row = await store.get(s, name)
        if row is None:
            raise not_found(name)
        data = _full_config(row, cipher)
    data.pop("_secret_fields", None)
    try:
        return SFTPConfig.model_validate(data)
    except ValidationError:  # pragma: no cover - it was validated when stored
        raise InvalidInput(f"stored config of source {name!r} is no longer valid; PUT it again") from None


async def overview(sessions, names: list[str] | None = None) -> list[SourceSummary]:
    """Counts by state, oldest new file, last scan and schedule state of every (or the named) source."""
    async with unit_of_work(sessions) as s:
        rows = await store.all_sources(s, names)
        keys = sorted({r.connection_key for r in rows})
        counts = await store.counts_by_key(s, keys)
        oldest = await store.oldest_new_by_key(s, keys)
        scans = {k: await store.last_scan(s, k) for k in keys}
    out = []
    for r in rows:
        cfg = orjson.loads(r.config_json)
        sc = scans.get(r.connection_key)
        out.append(SourceSummary(
            name=r.name, connection_key=r.connection_key, host=cfg["host"], port=cfg["port"],
            username=cfg["username"], remote_path=cfg["remote_path"],
            scan_interval_seconds=r.scan_interval_seconds,
            counts={st: counts.get(r.connection_key, {}).get(st, 0) for st in STATES},
            oldest_new_at=oldest.get(r.connection_key),
            last_scan=LastScan(started_at=sc.started_at, duration=sc.duration, error=sc.error, listed=sc.listed,
                               new_count=sc.new_count, failed_count=sc.failed_count,
                               bytes_downloaded=sc.bytes_downloaded, trigger=sc.trigger) if sc else None,
            consecutive_failures=r.consecutive_failures, next_scan_at=r.next_scan_at, last_error=r.last_error,
        ))
    return out
