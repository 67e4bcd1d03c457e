"""The function every soak schedule runs (plain mode: `soak_tasks.record(**kwargs)`), executed by
stock rq workers. It writes what the worker saw, not what the daemon claims: how often this job
id was executed, when, and the job hash's own `enqueued_at` (stamped by the daemon)."""

from __future__ import annotations

import time

from rq import get_current_job

EXEC_KEY = "soak:exec"  # HASH job id -> number of executions
STARTED_KEY = "soak:started"  # HASH job id -> worker start time of the first execution (epoch s)
ENQUEUED_KEY = "soak:enqueued"  # HASH job id -> the job hash's enqueued_at as stored


def record(**_kwargs: object) -> str:
    job = get_current_job()
    if job is None:
        raise RuntimeError("soak_tasks.record runs only inside an rq worker")
    conn = job.connection
    enqueued_at = conn.hget(job.key, "enqueued_at") or b""
    pipe = conn.pipeline(transaction=False)
    pipe.hincrby(EXEC_KEY, job.id, 1)
    pipe.hsetnx(STARTED_KEY, job.id, f"{time.time():.6f}")
    pipe.hsetnx(ENQUEUED_KEY, job.id, enqueued_at)
    pipe.execute()
    return job.id
