"""Workers: claim jobs, run engines, store videos; in threads, processes or both.

* ``loop.Worker``: one job at a time (claim, inputs, engine, encode, store, finish);
* ``running.RunningJob``: a job's context, heartbeat and deadline while it runs;
* ``pool.WorkerPool``: worker threads in one process, with shared housekeeping;
* ``supervisor.WorkerSupervisor``: the worker process ``serve`` runs and restarts.
"""

from reelforge.worker.loop import Worker
from reelforge.worker.pool import EXIT_RECYCLE, WorkerPool
from reelforge.worker.supervisor import WorkerSupervisor, run_worker_process

__all__ = ["EXIT_RECYCLE", "Worker", "WorkerPool", "WorkerSupervisor", "run_worker_process"]
