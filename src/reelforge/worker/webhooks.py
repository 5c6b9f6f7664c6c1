"""Delivering webhooks from the outbox, as the Standard Webhooks specification says.

Every worker process runs one ``WebhookDispatcher`` thread. It leases due deliveries
(``jobs.outbox``) and hands each to a pool of senders (``REELFORGE_WEBHOOK_CONCURRENCY``,
16), at most 2 at once to one receiver URL and 4 for one key, so one customer's slow
receiver delays no one else's. A sender builds the payload from the job as it is now,
signs it and POSTs it:

* headers ``webhook-id`` (the message id, the same on every attempt, so a receiver can
  drop a repeat), ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64
  HMAC-SHA256 of id.timestamp.body>``; after a secret rotation, the previous secret's
  signature too for 24 h), signed with the reference library ``standardwebhooks``;
* the receiver's address is vetted and pinned like an image URL's (``REELFORGE_FETCH_ALLOW``
  applies); it has ``REELFORGE_WEBHOOK_TIMEOUT_SECONDS`` (10) to answer;
* a 2xx delivers; 410 Gone disables the URL for the key; an address the fetch policy
  refuses is given up at once (it stays refused until the operator changes
  ``REELFORGE_FETCH_ALLOW``); anything else (or no answer) is tried again after 5 s,
  5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h, each with up to 10 % jitter, then
  given up. The schedule survives restarts: it is in the outbox.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks import Webhook

from reelforge import metrics
from reelforge.documents import generation_document, service_base_url
from reelforge.errors import FetchError
from reelforge.jobs import JobRecord, JobStore, KeyStore
from reelforge.jobs.outbox import Delivery
from reelforge.logs import throttle
from reelforge.media.fetch import post_to_url
from reelforge.media.netguard import FetchPolicy
from reelforge.openai_videos import OPENAI_FLAVOUR, video_id
from reelforge.settings import Settings
from reelforge.storage import Storage
from reelforge.storage.signing import SECRET_NAME, load_signer

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
JITTER = 0.1
"""Each retry waits its scheduled time plus up to this share of it."""


def sign(message_id: str, when: datetime, body: str, secrets: list[str]) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``, signed with every secret given."""
    signatures = [Webhook(secret).sign(message_id, when, body) for secret in secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }


def payload(
    delivery: Delivery, job: JobRecord, document: dict[str, Any], when: datetime
) -> dict[str, Any]:
    """``{type, timestamp, data: <GET document>}``; for a video made through the OpenAI
    front door, OpenAI's thin event ``{object: "event", id, type: "video.completed" |
    "video.failed", created_at, data: {id}}`` (the receiver retrieves the video)."""
    if delivery.flavour == OPENAI_FLAVOUR:
        completed = delivery.event.endswith("completed")
        return {
            "object": "event",
            "id": "evt_" + delivery.id.removeprefix("msg_"),
            "type": "video.completed" if completed else "video.failed",
            "created_at": int(when.timestamp()),
            "data": {"id": video_id(job.id)},
        }
    return {
        "type": delivery.event,
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": document,
    }


class WebhookDispatcher:
    """Delivers due webhooks until ``stop_event`` is set."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        keys: KeyStore,
        storage: Storage,
        *,
        dispatcher_id: str,
        stop_event: threading.Event,
        policy: FetchPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keys = keys
        self.storage = storage
        self.dispatcher_id = dispatcher_id
        self.stop_event = stop_event
        self.policy = policy or FetchPolicy.from_settings(settings)
        self.signer = load_signer(settings, lambda: store.secret(SECRET_NAME))
        """Video URLs in payloads are signed like the API's (``storage.signing``)."""
        self._random = random.Random()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._by_url: Counter[str] = Counter()
        self._by_owner: Counter[str] = Counter()
        self._senders = ThreadPoolExecutor(
            max_workers=settings.webhook_concurrency, thread_name_prefix="webhook"
        )

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                try:
                    busy = self.run_once()
                except Exception as error:
                    # An unreachable database fails every turn: once a minute, not a second.
                    throttle.log(
                        log,
                        logging.ERROR,
                        "webhook dispatcher error",
                        "webhook dispatcher error; retrying",
                        exc_info=error,
                    )
                    busy = False
                if not busy:
                    # New work, or a sender coming free (``outbox.wake``), ends the wait.
                    self.store.outbox.wait_for_work(self.settings.poll_seconds)
        finally:
            # Deliveries in flight end within the receiver timeout; unsent ones were
            # never claimed, and a lease left behind runs out.
            self._senders.shutdown(wait=False, cancel_futures=True)

    def run_once(self) -> bool:
        """Hand what may be sent now to the senders; ``False`` when nothing was.

        Claims only as many deliveries as there are free senders, and none for a URL
        or a key already at its share (``REELFORGE_WEBHOOK_ENDPOINT_CONCURRENCY``,
        ``REELFORGE_WEBHOOK_KEY_CONCURRENCY``), so a slow receiver holds at most its
        share of senders while the others keep delivering everyone else's."""
        settings = self.settings
        with self._lock:
            free = settings.webhook_concurrency - self._in_flight
            skip_urls = [
                url
                for url, count in self._by_url.items()
                if count >= settings.webhook_endpoint_concurrency
            ]
            skip_owners = [
                owner
                for owner, count in self._by_owner.items()
                if count >= settings.webhook_key_concurrency
            ]
        if free <= 0:
            return False
        due = self.store.outbox.claim_due(
            self.dispatcher_id,
            limit=free,
            lease_seconds=max(LEASE_SECONDS, 2 * settings.webhook_timeout_seconds + 10),
            skip_urls=skip_urls,
            skip_owners=skip_owners,
        )
        started = 0
        for delivery in due:
            if not self._take_turn(delivery):
                self.store.outbox.release(delivery.id, self.dispatcher_id)
                continue
            self._senders.submit(self._send, delivery)
            started += 1
        return started > 0

    def _take_turn(self, delivery: Delivery) -> bool:
        """Count ``delivery`` in flight if its URL, its key and the process have room."""
        settings = self.settings
        with self._lock:
            if (
                self._in_flight >= settings.webhook_concurrency
                or self._by_url[delivery.url] >= settings.webhook_endpoint_concurrency
                or self._by_owner[delivery.owner] >= settings.webhook_key_concurrency
            ):
                return False
            self._in_flight += 1
            self._by_url[delivery.url] += 1
            self._by_owner[delivery.owner] += 1
            return True

    def _send(self, delivery: Delivery) -> None:
        try:
            self.deliver(delivery)
        except Exception as error:  # the database went away mid-delivery: its lease ends
            throttle.log(
                log,
                logging.ERROR,
                "webhook delivery error",
                "webhook delivery error; it is tried again when its lease ends",
                exc_info=error,
                extra={"job_id": delivery.job_id, "webhook": delivery.id},
            )
        finally:
            with self._lock:
                self._in_flight -= 1
                for counts, name in (
                    (self._by_url, delivery.url),
                    (self._by_owner, delivery.owner),
                ):
                    counts[name] -= 1
                    if counts[name] <= 0:
                        del counts[name]
            self.store.outbox.wake()

    @property
    def in_flight(self) -> int:
        """Deliveries being sent now."""
        with self._lock:
            return self._in_flight

    def deliver(self, delivery: Delivery) -> None:
        outbox, extra = self.store.outbox, {"job_id": delivery.job_id, "webhook": delivery.id}
        job = self.store.get(delivery.job_id)
        if job is None:
            outbox.drop(delivery.id, self.dispatcher_id, "the generation was deleted")
            metrics.WEBHOOK_DELIVERIES.labels("dropped").inc()
            return
        secrets = self.keys.signing_secrets(delivery.owner)
        if not secrets:
            outbox.give_up(delivery.id, self.dispatcher_id, None, "the key has no secret")
            return
        now = datetime.now(UTC)
        document = generation_document(
            job, service_base_url(self.settings), self.settings, self.storage, self.signer
        )
        body = json.dumps(payload(delivery, job, document, now), separators=(",", ":"))
        status: int | None = None
        refused = False
        try:
            status = post_to_url(
                delivery.url,
                self.policy,
                body.encode(),
                headers=sign(delivery.id, now, body, secrets),
                timeout_seconds=self.settings.webhook_timeout_seconds,
            )
        except FetchError as failure:
            error, refused = failure.message, failure.refused
        else:
            error = f"HTTP {status}"
        if status is not None and 200 <= status < 300:
            outbox.delivered(delivery.id, self.dispatcher_id, status)
            metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
            log.info("webhook delivered", extra={**extra, "status": status})
            return
        if status == 410:
            outbox.disable(delivery, self.dispatcher_id, status)
            metrics.WEBHOOK_DELIVERIES.labels("disabled").inc()
            log.warning("webhook receiver is gone (410); URL disabled", extra=extra)
            return
        schedule = self.settings.webhook_retry_schedule
        if refused or delivery.attempts >= len(schedule):  # a refused address stays refused
            outbox.give_up(delivery.id, self.dispatcher_id, status, error)
            metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
            log.warning("webhook given up", extra={**extra, "error": error})
            return
        delay = schedule[delivery.attempts]
        delay += self._random.uniform(0, delay * JITTER)
        when = self.store.now() + timedelta(seconds=delay)
        outbox.retry_at(delivery.id, self.dispatcher_id, when, status, error)
        metrics.WEBHOOK_DELIVERIES.labels("retry").inc()
        log.info(
            "webhook failed; retrying",
            extra={**extra, "error": error, "in_seconds": round(delay, 1)},
        )
