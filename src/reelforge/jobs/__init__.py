"""Durable jobs: records, the store with leases, API keys and schema migrations."""

from reelforge.jobs.keys import ApiKey, KeyStore, Principal
from reelforge.jobs.models import JobStatus
from reelforge.jobs.store import JobRecord, JobStore, NewJob

__all__ = ["ApiKey", "JobRecord", "JobStatus", "JobStore", "KeyStore", "NewJob", "Principal"]
