"""The web UI's session: a signed cookie, no server-side store.

The cookie holds ``{"u": user id | null, "i": issued at, "e": expires at, "c": CSRF token,
"p": password fingerprint, "f": flash messages}``, serialised and signed with HMAC-SHA1 by
itsdangerous (``URLSafeSerializer``, its own salt). Nothing in it is secret from the user: the
CSRF token is theirs, and the password fingerprint is an HMAC of the stored hash under the
signing key (it lets a password change end every other sign-in of that user).

Expiry is absolute (``ui_session_hours`` after sign-in), checked from the signed payload; a
tampered, malformed or expired cookie is the same as no cookie. Anonymous visitors get a cookie
too (user null): it carries the CSRF token of the sign-in form.

The signing key is ``FILEREGISTRY_UI_SESSION_SECRET`` or, unset, 32 random bytes generated into
``<data_dir>/ui-session.key`` (mode 0600) on first use and shared by every process on that dir.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from fileregistry.config import Settings

log = logging.getLogger("fileregistry.web")

COOKIE = "fr_ui"
COOKIE_PATH = "/ui"
KEY_FILE = "ui-session.key"
MAX_FLASH = 4
MAX_FLASH_CHARS = 600  # a cookie holds ~4 KB; long server messages are cut


@dataclass
class UISession:
    user_id: int | None = None
    issued_at: float = 0.0
    expires_at: float = 0.0
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    pw: str = ""
    flashes: list[tuple[str, str]] = field(default_factory=list)
    # True when the request came with a sign-in that has since expired (or was cut short).
    expired: bool = False
    modified: bool = False

    def flash(self, level: str, message: str) -> None:
        if len(message) > MAX_FLASH_CHARS:
            message = message[: MAX_FLASH_CHARS - 1] + "…"
        self.flashes = (self.flashes + [(level, message)])[-MAX_FLASH:]
        self.modified = True

    def pop_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        if out:
            self.modified = True
        return out

    def sign_in(self, user_id: int, pw: str, ttl_seconds: float) -> None:
        """A fresh session for ``user_id``: new CSRF token (no fixation of a pre-login token)."""
        now = time.time()
        self.user_id, self.issued_at, self.expires_at, self.pw = user_id, now, now + ttl_seconds, pw
        self.csrf = secrets.token_urlsafe(24)
        self.expired = False
        self.modified = True

    def sign_out(self) -> None:
        self.user_id, self.issued_at, self.expires_at, self.pw = None, 0.0, 0.0, ""
        self.csrf = secrets.token_urlsafe(24)
        self.modified = True


class SessionCodec:
    def __init__(self, key: bytes, ttl_seconds: float) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        self._ser = URLSafeSerializer(key, salt="fileregistry.ui.session")

    def password_fingerprint(self, password_hash: str | None) -> str:
        digest = hmac.new(self._key, b"pw:" + (password_hash or "").encode(), hashlib.sha256).hexdigest()
        return digest[:22]

    def dumps(self, s: UISession) -> str:
        data: dict[str, Any] = {"c": s.csrf}
        if s.user_id is not None:
            data.update(u=s.user_id, i=int(s.issued_at), e=int(s.expires_at), p=s.pw)
        if s.flashes:
            data["f"] = [list(f) for f in s.flashes]
        return self._ser.dumps(data)

    def loads(self, raw: str | None, *, now: float | None = None) -> UISession:
        if not raw:
            return UISession(modified=True)
        try:
            data = self._ser.loads(raw)
            csrf = data["c"]
            if not isinstance(csrf, str) or len(csrf) < 16:
                raise ValueError("csrf")
        except (BadData, KeyError, TypeError, ValueError):
            # Tampered or from another key: a fresh session, marked expired so the page says why.
            return UISession(modified=True, expired=True)
        flashes = [(str(a), str(b)) for a, b in data.get("f", [])[:MAX_FLASH] if isinstance(b, str)]
        s = UISession(csrf=csrf, flashes=flashes)
        uid = data.get("u")
        if isinstance(uid, int):
            now = time.time() if now is None else now
            expires = float(data.get("e", 0))
            if expires > now:
                s.user_id, s.issued_at, s.expires_at = uid, float(data.get("i", 0)), expires
                s.pw = str(data.get("p", ""))
            else:
                s.expired = True
                s.modified = True
        return s


def load_key(settings: Settings) -> bytes:
    """The signing key: the setting, or the generated key file of the data dir."""
    if settings.ui_session_secret is not None and settings.ui_session_secret.get_secret_value():
        return settings.ui_session_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32).hex()
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    try:
        os.link(tmp, path)  # atomic and never overwrites: a concurrent first start keeps one key
        log.info("generated the web UI session key in %s", path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if len(key) < 32:
        raise ValueError(f"{path} holds no usable key (delete it to generate a new one)")
    return key.encode()
