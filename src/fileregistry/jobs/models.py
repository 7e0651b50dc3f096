"""Durable job tables.

``status`` is what clients see and is only ever ``running``, ``successful`` or ``failed``
(Alation's clients poll forever on anything else). ``phase`` is internal: ``queued`` (waiting
for its turn), ``started`` (a runner is working on it) or ``done``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fileregistry.db import Base, UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    phase: Mapped[str] = mapped_column(sa.String(16))
    fs_id: Mapped[int | None] = mapped_column(ID, nullable=True)
    params: Mapped[str] = mapped_column(sa.Text(), default="{}")  # JSON
    msg: Mapped[str] = mapped_column(sa.Text(), default="")
    result: Mapped[str] = mapped_column(sa.Text(), default="[]")  # JSON list of strings
    counts: Mapped[str] = mapped_column(sa.Text(), default="{}")  # JSON object
    attempts: Mapped[int] = mapped_column(sa.Integer(), default=0)
    created_at = mapped_column(UTCDateTime(), nullable=False)
    started_at = mapped_column(UTCDateTime(), nullable=True)
    finished_at = mapped_column(UTCDateTime(), nullable=True)
    # The lease of a 'started' job: the runner that has it and when it last refreshed it.
    owner: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    heartbeat_at = mapped_column(UTCDateTime(), nullable=True)


sa.Index("ix_jobs_phase_id", Job.phase, Job.id)


class JobError(Base):
    __tablename__ = "job_errors"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    job_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    severity: Mapped[str] = mapped_column(sa.String(8))  # error | warning
    line: Mapped[int | None] = mapped_column(sa.BigInteger(), nullable=True)
    field: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    code: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.Text())


sa.Index("ix_job_errors_job_id_id", JobError.job_id, JobError.id)

jobs = Job.__table__
job_errors = JobError.__table__
