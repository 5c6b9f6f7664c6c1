"""Verifying reelforge webhooks in your receiver.

Deliveries follow the Standard Webhooks specification, so any of its libraries works;
this helper wraps the reference one::

    from reelforge.webhooks import verify

    event = verify(request.headers, request.body, secret)  # "whsec_..." of your key
    if event["type"] == "generation.completed":
        url = event["data"]["video"]["url"]

It checks the ``webhook-signature`` (any of the signatures sent, so a rotation in
progress verifies with the old or the new secret) and that ``webhook-timestamp`` is
within five minutes, against replays. Keep ``webhook-id`` to drop repeats: a delivery
may arrive more than once, never with another id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify"]


def verify(headers: Mapping[str, str], body: bytes | str, secret: str) -> dict[str, Any]:
    """The event (``{type, timestamp, data}``) if ``body`` was signed with ``secret``;
    raises ``WebhookVerificationError`` otherwise."""
    wanted = {name.lower(): value for name, value in headers.items()}
    return Webhook(secret).verify(body, wanted)
