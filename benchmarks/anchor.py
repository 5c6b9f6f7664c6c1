"""The anchor server: a bare FastAPI app with the same uvicorn settings and logging as
``reelforge serve``, returning a document like a generation's. Run as a script."""

from __future__ import annotations

import sys
import uuid
from typing import Any

from fastapi import FastAPI, Request

from reelforge.api.connections import run_server
from reelforge.logs import configure_logging
from reelforge.settings import Settings

DOCUMENT: dict[str, Any] = {
    "id": f"{uuid.uuid4()}:veo2",
    "status": "completed",
    "video": {
        "url": "http://127.0.0.1:8000/files/videos/abcdefghijklmnopqrstuvwxyz012345/output.mp4"
        "?expires=1795566145&signature=Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA",
        "content_type": "video/mp4",
        "file_name": "output.mp4",
        "file_size": 1425874,
        "width": 1280,
        "height": 720,
        "duration": 5,
        "thumbnail_url": "http://127.0.0.1:8000/files/videos/abc/thumbnail.jpg?expires=1",
    },
    "error": None,
    "meta": {"usage": {"credits_used": 525000, "usd_spent": 0.2625}},
    "model": "veo2",
    "created_at": "2026-11-21T23:50:00.120000Z",
    "started_at": "2026-11-21T23:50:00.150000Z",
    "completed_at": "2026-11-21T23:50:03.410000Z",
    "progress": 100.0,
    "stage": None,
    "seed": 1871022398,
}

app = FastAPI()


@app.get("/doc")
def document() -> dict[str, Any]:
    return DOCUMENT


@app.post("/doc")
async def create(request: Request) -> dict[str, Any]:
    await request.json()
    return {"id": f"{uuid.uuid4()}:veo2", "status": "queued"}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    settings = Settings(port=int(sys.argv[1]))
    configure_logging(settings.log_level, settings.log_format)
    run_server(app, settings)
