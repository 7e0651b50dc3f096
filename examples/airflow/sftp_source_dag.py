"""Example Airflow DAG: process the files partners drop on a stored fileregistry SFTP source.

    scan ──> process[name] (one mapped task per file in new/)

``scan`` asks fileregistry to scan the source and returns the files waiting in ``new``; each
``process`` task claims one (``mark-processing``), runs the processor on the mirrored copy, and
marks it ``completed``, or ``error`` when the processor raised (the task then fails, so it shows
red). The logic is in ``sftp_tasks.py`` (plain functions, testable without Airflow); this file only
wires it up.

Setup (see docs/client.md):
- copy ``sftp_tasks.py`` and this file into the DAGs folder; install ``fileregistry`` on the workers;
- worker environment: ``FILEREGISTRY_URL``, ``FILEREGISTRY_REFRESH_TOKEN`` + ``FILEREGISTRY_USER_ID``
  (or ``FILEREGISTRY_TOKEN``), and ``FILEREGISTRY_MIRROR_DIR``: the server's mirror directory as seen
  from the worker (same host or a shared volume);
- the source: the ``source`` param of a run, else the Airflow Variable ``fileregistry_sftp_source``;
- the processor: the ``processor`` param, ``"package.module:function"``, called with the local
  ``pathlib.Path`` of the file; its return value goes to XCom.
"""

from __future__ import annotations

from typing import Any

import pendulum

try:  # Airflow 3
    from airflow.sdk import Param, Variable, dag, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag, task
    from airflow.models import Variable
    from airflow.models.param import Param

import sftp_tasks

SOURCE_VARIABLE = "fileregistry_sftp_source"


def _source(params: dict[str, Any]) -> str:
    # Read at run time, never at parse time (a Variable lookup at import costs a DB query per parse).
    return params.get("source") or Variable.get(SOURCE_VARIABLE)


@dag(
    dag_id="fileregistry_sftp_source",
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one scan at a time; a file is claimed once anyway (a second claim is skipped)
    params={
        "source": Param(None, type=["null", "string"],
                        description=f"Stored source name; empty: the Variable {SOURCE_VARIABLE!r}."),
        "processor": Param("sftp_tasks:count_lines", type="string",
                           description="'package.module:function' called with the mirrored file's path."),
    },
    tags=["fileregistry", "sftp"],
)
def fileregistry_sftp_source() -> None:
    @task
    def scan(params: dict[str, Any] | None = None) -> list[str]:
        with sftp_tasks.make_client() as client:
            return sftp_tasks.scan_source(client, _source(params or {}))

    # retries=0: a retry would find the file already moved to error/ (it is then skipped, not redone).
    @task(retries=0, max_active_tis_per_dagrun=4)
    def process(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        params = params or {}
        fn = sftp_tasks.resolve_callable(params["processor"])
        with sftp_tasks.make_client() as client:
            return sftp_tasks.process_file(client, _source(params), name, fn).as_dict()

    process.expand(name=scan())


fileregistry_sftp_source()
