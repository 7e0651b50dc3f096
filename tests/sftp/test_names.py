"""Pure rules: file names, connection keys, lifecycle names, mirror path encoding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fileregistry.errors import BadRequest
from fileregistry.sftp.mirror import Mirror, encode_key
from fileregistry.sftp.names import connection_key, processing_name, validate_filename


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/", "a\\b", "a\x00b", "../x", "x" * 256])
def test_bad_filenames_are_refused(name):
    with pytest.raises(BadRequest) as exc:
        validate_filename(name)
    assert "filename" in exc.value.message


@pytest.mark.parametrize("name", ["report..csv", "a.csv", ".hidden", "..x", "x..", "ünïcode.txt", "a b"])
def test_good_filenames_pass(name):
    assert validate_filename(name) == name


def test_connection_key_is_the_seed_form():
    assert connection_key("sftp.example.com", "/remote/base/path") == (
        "sftp_connection_sftp.example.com_/remote/base/path"
    )
    assert connection_key("h", "/") == "sftp_connection_h_/"


def test_processing_name():
    when = datetime(2023, 10, 27, 10, 0, 0, tzinfo=UTC)
    assert processing_name("file1.csv", when) == "file1_20231027100000.csv"
    assert processing_name("file1.csv", when, 1) == "file1_20231027100000_1.csv"
    assert processing_name("report..csv", when) == "report._20231027100000.csv"
    assert processing_name("noext", when) == "noext_20231027100000"
    assert processing_name("a.tar.gz", when) == "a.tar_20231027100000.gz"


@pytest.mark.parametrize(
    "remote_path", ["/../../etc", "/..", "..", "/a/../../../b", "/x\\..\\..", "%2e%2e/%2e%2e", "/" + "a/" * 300]
)
def test_mirror_never_leaves_its_root(tmp_path, remote_path):
    root = tmp_path / "mirror"
    root.mkdir()
    enc = encode_key(connection_key("h", remote_path))
    assert "/" not in enc and enc not in (".", "..") and len(enc) <= 200
    m = Mirror(root, connection_key("h", remote_path))
    assert m.base.parent == root.resolve()
    assert m.path("new", "a.csv").parent.parent == m.base
    with pytest.raises(BadRequest):
        m.path("new", "../../x")


def test_mirror_encoding_is_distinct():
    keys = [connection_key("h", p) for p in ("/a/b", "/a_b", "/a%2Fb", "/a/b/", "a/b")]
    assert len({encode_key(k) for k in keys}) == len(keys)
