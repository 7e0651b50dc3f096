"""Jinja2 environment of the UI and the filters its templates use (pure formatting, no I/O)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlencode

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_URL = "/ui/static"


def filesize(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def when(value: datetime | None) -> str:
    """``2024-05-01 10:00:00 UTC``."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


def span(seconds: float | None) -> str:
    """A duration in a person's words: ``850 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 d 4 h``."""
    if seconds is None:
        return "—"
    s = max(0.0, float(seconds))
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m} min {sec} s" if sec else f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``just now``, ``42 s ago``, ``3 min ago``, ``2 h 10 min ago``, ``3 d 4 h ago`` (or ``in ...``)."""
    if value is None:
        return "—"
    delta = ((now or datetime.now(UTC)) - value).total_seconds()
    if delta < 0:
        return "in " + _coarse(-delta)
    if delta < 5:
        return "just now"
    return _coarse(delta) + " ago"


def _coarse(seconds: float) -> str:
    """The two largest units only."""
    if seconds < 60:
        return f"{int(seconds)} s"
    m = int(seconds) // 60
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def epoch(value: int | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def perms(bits: int | None) -> str:
    """``755`` -> ``rwxr-xr-x`` (the stored value is the three octal digits as a decimal number)."""
    if bits is None:
        return "—"
    digits = f"{bits:03d}"[-3:]
    out = ""
    for d in digits:
        v = int(d) if d.isdigit() and int(d) < 8 else 0
        out += ("r" if v & 4 else "-") + ("w" if v & 2 else "-") + ("x" if v & 1 else "-")
    return out


def number(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def query(**params: object) -> str:
    """``?a=1&b=2`` from the non-empty params (for links that keep the current filters)."""
    clean = {k: v for k, v in params.items() if v not in (None, "", False)}
    return "?" + urlencode(clean) if clean else ""


@cache
def _asset_version(name: str) -> str:
    try:
        return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static(name: str) -> str:
    """URL of a static asset with a content hash, so browsers may cache it and still see changes."""
    return f"{STATIC_URL}/{name}?v={_asset_version(name)}"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.autoescape = True
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.filters.update(filesize=filesize, when=when, iso=iso, span=span, ago=ago, epoch=epoch, perms=perms,
                       number=number)
    env.globals.update(static=static, query=query)
    return templates
