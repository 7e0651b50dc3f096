"""The example DAG's task functions (examples/airflow/sftp_tasks.py) end to end: live server, real sshd.

Also the DAG file itself, imported with a stand-in for Airflow's decorators (Airflow is not a
dependency of this project), and its task bodies run against the live server.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest

from fileregistry.client import Client

pytestmark = pytest.mark.sshd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "airflow"


@pytest.fixture
def sftp_tasks(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("sftp_tasks", None)
    return importlib.import_module("sftp_tasks")


def admin(server) -> Client:
    return Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id)


class Recorder:
    """A processor that checks it gets the mirrored copy in processing/, and fails on 'bad' files."""

    def __init__(self, zone) -> None:
        self.zone = zone
        self.seen: list[Path] = []

    def __call__(self, path: Path) -> dict:
        self.seen.append(path)
        assert path.parent == self.zone.mirror.resolve() / "processing"
        assert path.read_bytes() == (self.zone.path / "processing" / path.name).read_bytes()
        if path.name.startswith("bad"):
            raise ValueError("cannot parse " + path.name)
        return {"size": path.stat().st_size}


def _outcomes_on_server(zone, outcomes) -> None:
    for o in outcomes:
        assert o.final_name is not None
        assert (zone.path / o.state / o.final_name).exists(), o
        assert (zone.mirror / o.state / o.final_name).exists(), o
    assert list((zone.path / "new").iterdir()) == []
    assert list((zone.path / "processing").iterdir()) == []


def test_scan_process_complete_and_error(server, zone, sftp_tasks):
    zone.put("a.csv", "1\n2\n")
    zone.put("b.csv", "3\n")
    zone.put("bad.csv", "?")
    fn = Recorder(zone)
    with admin(server) as fr:
        names = sftp_tasks.scan_source(fr, zone.cfg)
        assert names == ["a.csv", "b.csv", "bad.csv"]
        a = sftp_tasks.process_file(fr, zone.cfg, "a.csv", fn, mirror_dir=server.mirror_dir)
        assert a.state == "completed" and a.result == {"size": 4} and a.error is None
        assert a.final_name.startswith("a_") and a.final_name.endswith(".csv")
        with pytest.raises(ValueError, match="cannot parse bad_"):
            sftp_tasks.process_file(fr, zone.cfg, "bad.csv", fn, mirror_dir=server.mirror_dir)
        # the file went to error/ before the exception reached the task
        [err] = list((zone.path / "error").iterdir())
        assert err.name.startswith("bad_") and err.read_bytes() == b"?"
        assert (zone.mirror / "error" / err.name).read_bytes() == b"?"
        b = sftp_tasks.process_file(fr, zone.cfg, "b.csv", sftp_tasks.count_lines, mirror_dir=server.mirror_dir)
        assert b.result == {"bytes": 2, "lines": 1}
        status = fr.status(config=zone.cfg).file_registry
        assert {k.split("/")[0] for k in status} == {"completed", "error"}
        # a name claimed already (or gone) is skipped, not failed
        skipped = sftp_tasks.process_file(fr, zone.cfg, "a.csv", fn, mirror_dir=server.mirror_dir)
        assert skipped.state == "skipped" and "'completed'" in skipped.error
    assert [p.name.split("_")[0] for p in fn.seen] == ["a", "bad"]
    _outcomes_on_server(zone, [a, b])
    assert sorted(p.name.split("_")[0] for p in (zone.path / "completed").iterdir()) == ["a", "b"]


def test_run_source_with_the_mirror_dir_from_env(server, zone, sftp_tasks, monkeypatch):
    monkeypatch.delenv("FILEREGISTRY_MIRROR_DIR", raising=False)
    monkeypatch.setenv("FILEREGISTRY_DATA_DIR", str(server.data_dir))
    for name in ("x1.txt", "bad1.txt", "x2.txt"):
        zone.put(name, name)
    with admin(server) as fr:
        outcomes = sftp_tasks.run_source(fr, zone.cfg, Recorder(zone))
        assert [(o.name, o.state) for o in outcomes] == [("bad1.txt", "error"), ("x1.txt", "completed"),
                                                          ("x2.txt", "completed")]
        assert outcomes[0].error.startswith("ValueError: cannot parse bad1_")
        _outcomes_on_server(zone, outcomes)
        # a second run finds nothing new
        assert sftp_tasks.run_source(fr, zone.cfg, Recorder(zone)) == []


def test_a_worker_without_the_mirror_downloads_the_file(server, zone, sftp_tasks, monkeypatch):
    monkeypatch.delenv("FILEREGISTRY_MIRROR_DIR", raising=False)
    monkeypatch.delenv("FILEREGISTRY_DATA_DIR", raising=False)
    zone.put("big.bin", bytes(range(256)) * 4096)
    zone.put("bad.bin", b"?")
    seen: list[Path] = []

    def fn(path: Path) -> int:
        seen.append(path)
        assert path.parent != zone.mirror.resolve() / "processing"  # a downloaded copy, not the mirror
        assert path.read_bytes() == (zone.path / "processing" / path.name).read_bytes()
        if path.name.startswith("bad"):
            raise ValueError("bad input")
        return path.stat().st_size

    with admin(server) as fr:
        outcomes = sftp_tasks.run_source(fr, zone.cfg, fn)
    assert [(o.name, o.state, o.result) for o in outcomes] == [("bad.bin", "error", None),
                                                                ("big.bin", "completed", 256 * 4096)]
    assert all(not p.exists() for p in seen)  # the temporary copies are gone
    _outcomes_on_server(zone, outcomes)


def test_client_download_file_errors(server, zone):
    from fileregistry.client import BadRequest, NotFound

    zone.put("a.csv", "1\n")
    with admin(server) as fr:
        fr.scan(config=zone.cfg)
        with pytest.raises(NotFound, match="File nope.csv not found in new state"):
            fr.download_file("nope.csv", "new", Path(server.data_dir) / "x", config=zone.cfg)
        assert not (Path(server.data_dir) / "x").exists()
        assert not list(Path(server.data_dir).glob(".x.part"))
        with pytest.raises(BadRequest, match="state must be one of"):
            fr.download_file("a.csv", "archive", Path(server.data_dir) / "x", config=zone.cfg)


def test_resolve_callable_and_target(sftp_tasks):
    assert sftp_tasks.resolve_callable("sftp_tasks:count_lines") is sftp_tasks.count_lines
    assert sftp_tasks.resolve_callable(len) is len
    with pytest.raises(ValueError):
        sftp_tasks.resolve_callable("no_colon")
    assert sftp_tasks.target("partner-a") == {"source": "partner-a"}
    assert sftp_tasks.target({"host": "h"}) == {"config": {"host": "h"}}


# --------------------------------------------------------------------------- the DAG file


class _FakeTask:
    """Just enough of Airflow's TaskFlow objects to import the DAG file and run its task bodies."""

    def __init__(self, fn, **kwargs) -> None:
        self.function = fn
        self.kwargs = kwargs
        self.expanded: dict | None = None

    def __call__(self, *args, **kwargs):
        return ("XComArg", self.function.__name__)

    def expand(self, **kwargs):
        self.expanded = kwargs
        return ("MappedXComArg", self.function.__name__)


@pytest.fixture
def fake_airflow(monkeypatch):
    built: dict = {"tasks": {}, "variables": {}}

    def task(fn=None, **kwargs):
        def wrap(f):
            t = _FakeTask(f, **kwargs)
            built["tasks"][f.__name__] = t
            return t
        return wrap(fn) if fn is not None else wrap

    def dag(**kwargs):
        def wrap(f):
            def build():
                built["dag"] = kwargs
                f()
            return build
        return wrap

    class Variable:
        @staticmethod
        def get(key):
            return built["variables"][key]

    sdk = types.ModuleType("airflow.sdk")
    sdk.dag, sdk.task, sdk.Variable = dag, task, Variable
    sdk.Param = lambda default=None, **kw: {"default": default, **kw}
    airflow = types.ModuleType("airflow")
    airflow.sdk = sdk
    monkeypatch.setitem(sys.modules, "airflow", airflow)
    monkeypatch.setitem(sys.modules, "airflow.sdk", sdk)
    monkeypatch.setitem(sys.modules, "pendulum", types.SimpleNamespace(datetime=lambda *a, **kw: a))
    return built


def test_dag_file_wiring_and_task_bodies(server, zone, sftp_tasks, fake_airflow, monkeypatch, tmp_path):
    sys.modules.pop("sftp_source_dag", None)
    importlib.import_module("sftp_source_dag")
    built = fake_airflow
    assert built["dag"]["dag_id"] == "fileregistry_sftp_source" and built["dag"]["catchup"] is False
    scan, process = built["tasks"]["scan"], built["tasks"]["process"]
    assert process.expanded == {"name": ("XComArg", "scan")}
    assert process.kwargs["retries"] == 0

    monkeypatch.setenv("FILEREGISTRY_URL", server.url)
    monkeypatch.setenv("FILEREGISTRY_REFRESH_TOKEN", server.admin_refresh)
    monkeypatch.setenv("FILEREGISTRY_USER_ID", str(server.admin_id))
    monkeypatch.setenv("FILEREGISTRY_MIRROR_DIR", str(server.mirror_dir))
    zone.put("in.csv", "a\nb\nc\n")
    zone.put("bad.csv", "?")
    with admin(server) as fr:
        fr.put_source("partner-a", zone.cfg)
    built["variables"]["fileregistry_sftp_source"] = "partner-a"  # no source param: the Variable
    params = {"source": None, "processor": "sftp_tasks:count_lines"}
    names = scan.function(params=params)
    assert names == ["bad.csv", "in.csv"]
    out = process.function(name="in.csv", params=params)
    assert out["state"] == "completed" and out["result"] == {"bytes": 6, "lines": 3}
    assert (zone.path / "completed" / out["final_name"]).read_bytes() == b"a\nb\nc\n"

    # a processor given by its dotted name that fails: the task fails, the file is in error/
    procs = tmp_path / "procs_for_dag.py"
    procs.write_text("def fail(path):\n    raise RuntimeError('broken ' + path.name)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="broken bad_"):
        process.function(name="bad.csv", params={"source": "partner-a", "processor": "procs_for_dag:fail"})
    [err] = list((zone.path / "error").iterdir())
    assert err.name.startswith("bad_") and err.read_bytes() == b"?"
    assert list((zone.path / "new").iterdir()) == [] and list((zone.path / "processing").iterdir()) == []


def test_tasks_with_a_stored_source(server, zone, sftp_tasks):
    for name in ("p.csv", "bad-q.csv"):
        zone.put(name, name)
    with admin(server) as fr:
        fr.put_source("partner-b", zone.cfg, scan_interval_seconds=None)
    # the DAG's identity need not be an admin: a stored source is usable by any user
    with Client(server.url, refresh_token=server.user_refresh, user_id=server.user_id) as alice:
        outcomes = sftp_tasks.run_source(alice, "partner-b", Recorder(zone), mirror_dir=server.mirror_dir)
    assert [(o.name, o.state) for o in outcomes] == [("bad-q.csv", "error"), ("p.csv", "completed")]
    _outcomes_on_server(zone, outcomes)


def test_async_client_download_file(server, zone, tmp_path):
    import asyncio
    import io

    from fileregistry.client import AsyncClient

    zone.put("a.csv", b"1,2\n" * 1000)

    async def go():
        async with AsyncClient(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id) as fr:
            await fr.scan(config=zone.cfg)
            buf = io.BytesIO()
            n = await fr.download_file("a.csv", "new", buf, config=zone.cfg)
            m = await fr.download_file("a.csv", "new", tmp_path / "a.csv", config=zone.cfg)
            return n, m, buf.getvalue()

    n, m, data = asyncio.run(go())
    assert n == m == 4000 and data == b"1,2\n" * 1000 == (tmp_path / "a.csv").read_bytes()
