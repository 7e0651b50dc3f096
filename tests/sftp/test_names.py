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


def test_decode_names_v3():
    import struct

    from fileregistry.sftp.remote import _decode_names_v3

    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    def entry(name: bytes, mode: int, size: int = 5, mtime: int = 1_700_000_000, ext: bool = False) -> bytes:
        flags = 0x1 | 0x2 | 0x4 | 0x8 | (0x80000000 if ext else 0)
        attrs = struct.pack(">IQIIIII", flags, size, 0, 0, mode, 1, mtime)
        if ext:
            attrs += struct.pack(">I", 1) + s(b"x@example.com") + s(b"data")
        return s(name) + s(b"-rw-r--r-- longname") + attrs

    data = struct.pack(">I", 5) + b"".join([
        entry(b"a.csv", 0o100644),
        entry(b"dir", 0o040755),
        entry(b"link", 0o120777),
        entry(b"\xff\xfe.bin", 0o100644),
        entry("ü.txt".encode(), 0o100600, size=7, mtime=42, ext=True),
    ])
    got = [(e.name, e.size, e.mtime) for e in _decode_names_v3(data)]
    assert got == [("a.csv", 5, 1_700_000_000), ("ü.txt", 7, 42)]
