"""FILEREGISTRY_SECRET_KEY: generated when unset, malformed or wrong keys stop the start clearly, rotation."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fileregistry.app import create_app
from fileregistry.sources.crypto import SecretKeyError

CFG = {"host": "h.example", "username": "u", "password": "pw-secret-123"}


def _put(app) -> None:
    """Start ``app``, store a source with a password through the service (on the app's loop), stop."""
    from fileregistry.sftp.schemas import SFTPConfig
    from fileregistry.sources import service

    with TestClient(app) as c:
        st = app.state
        c.portal.call(service.put_source, st.sessions, st.cipher, "acme", SFTPConfig.model_validate(CFG), None)


def _read_password(app) -> str:
    from fileregistry.sources import service

    with TestClient(app) as c:
        st = app.state
        cfg = c.portal.call(service.resolve_config, st.sessions, st.cipher, "acme")
        return cfg.password.get_secret_value()


def test_a_key_is_generated_into_the_data_dir_with_a_warning(settings, caplog):
    caplog.set_level(logging.WARNING, "fileregistry")
    _put(create_app(settings))
    path = settings.data_dir / "secret.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    Fernet(path.read_text().strip().encode())  # a valid key
    assert any("FILEREGISTRY_SECRET_KEY is not set" in r.getMessage() for r in caplog.records)
    assert path.read_text().strip() not in caplog.text
    # The next start reuses it, without a new warning.
    caplog.clear()
    assert _read_password(create_app(settings)) == "pw-secret-123"
    assert not any("not set" in r.getMessage() for r in caplog.records)


def test_malformed_key_is_a_clear_error_at_start(settings):
    settings.secret_key = SecretStr("not-a-fernet-key")
    with pytest.raises(SecretKeyError) as exc, TestClient(create_app(settings)):
        pass
    assert "not a Fernet key" in exc.value.message and "not-a-fernet-key" not in exc.value.message


def test_wrong_key_is_a_clear_error_at_start_not_garbage(settings):
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.secret_key = SecretStr(a)
    _put(create_app(settings))
    settings.secret_key = SecretStr(b)
    with pytest.raises(SecretKeyError) as exc, TestClient(create_app(settings)):
        pass
    assert "not the key the stored source secrets were encrypted with" in exc.value.message
    assert a not in exc.value.message and b not in exc.value.message
    # Rotation: the new key first, the old one after it; everything stored still opens.
    settings.secret_key = SecretStr(f"{b},{a}")
    assert _read_password(create_app(settings)) == "pw-secret-123"


def test_serve_with_a_wrong_key_prints_one_line_and_exits_1(settings, tmp_path):
    a = Fernet.generate_key().decode()
    settings.secret_key = SecretStr(a)
    _put(create_app(settings))
    env = dict(os.environ, FILEREGISTRY_DATA_DIR=str(settings.data_dir),
               FILEREGISTRY_DATABASE_URL=settings.resolved_database_url,
               FILEREGISTRY_SECRET_KEY=Fernet.generate_key().decode())
    p = subprocess.run([sys.executable, "-m", "fileregistry.cli", "serve", "--port", "0"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "error: FILEREGISTRY_SECRET_KEY is not the key" in p.stderr
    assert "Traceback" not in p.stderr and env["FILEREGISTRY_SECRET_KEY"] not in p.stderr + p.stdout
