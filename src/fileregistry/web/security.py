"""Pure checks of the web UI: where a ``?next=`` may send a browser, CSRF token comparison, headers."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

HOME = "/ui/"

# Pages are built from our own files only: no inline script, no third-party origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def safe_next(target: str | None, default: str = HOME) -> str:
    """``target`` if it is a path inside this server's UI (``/ui`` or below), else ``default``.

    Refused: absolute and scheme-relative URLs (``https://x``, ``//x``, ``/\\x``), backslashes,
    control characters, ``..`` segments and anything outside ``/ui``: no open redirect.
    """
    if not target or len(target) > 2000:
        return default
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target) or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    path = parts.path
    if not (path == "/ui" or path.startswith("/ui/")):
        return default
    if any(seg in ("..", ".") for seg in path.split("/")) or "%2e" in path.lower() or "%2f" in path.lower():
        return default
    if path.startswith(("/ui/login", "/ui/logout")):
        return default
    return target


def csrf_ok(expected: str, given: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
