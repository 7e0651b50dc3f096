"""Pure pieces: the failure limiter's window, token format and hashing, the bootstrap rule."""

from __future__ import annotations

import hashlib

from fileregistry.auth import crypto, users
from fileregistry.auth.ratelimit import FailureLimiter


def test_limiter_window():
    now = [1000.0]
    lim = FailureLimiter(3, 60, clock=lambda: now[0])
    for i in range(3):
        assert lim.retry_after("a") == 0
        lim.record_failure("a")
        now[0] += 10
    # failures at 1000, 1010, 1020; now 1030 -> blocked until 1060
    assert lim.retry_after("a") == 30
    assert lim.retry_after("b") == 0  # per client
    now[0] = 1060.5
    assert lim.retry_after("a") == 0  # the oldest aged out
    lim.record_failure("a")
    assert lim.retry_after("a") > 0
    now[0] = 2000
    assert lim.retry_after("a") == 0 and "a" not in lim._failures  # forgotten entirely


def test_tokens_are_random_and_hashed():
    a, b = crypto.new_token(), crypto.new_token()
    assert a != b and len(a) == 43  # 32 bytes = 256 bits
    assert crypto.hash_token(a) == hashlib.sha256(a.encode()).hexdigest()
    assert crypto.token_matches(a, crypto.hash_token(a))
    assert not crypto.token_matches(b, crypto.hash_token(a))


def test_bootstrap_admin_once(db, auth_tokens):
    # The shared fixtures already created users, so on this database bootstrap must do nothing.
    assert db(lambda s: users.bootstrap_admin(s, token_days=1)) is None


def test_bootstrap_admin_on_empty_table(db):
    from sqlalchemy import delete

    from fileregistry.auth.models import User

    async def go(s):
        await s.execute(delete(User))
        first = await users.bootstrap_admin(s, token_days=1)
        second = await users.bootstrap_admin(s, token_days=1)
        return first, second

    first, second = db(go)
    assert first is not None and first[0].username == "admin" and first[0].is_admin and len(first[1]) == 43
    assert second is None
