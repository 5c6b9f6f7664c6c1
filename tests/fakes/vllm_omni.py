"""A local fake of vLLM-Omni's ``/v1/videos`` server: its protocol and error shapes.

What it speaks follows vLLM-Omni's ``docs/serving/videos_api.md`` and
``vllm_omni/entrypoints/openai/protocol/videos.py`` (github:vllm-project/vllm-omni):
a multipart create (``prompt``, ``model``, ``seconds``, ``size``, ``seed``,
``input_reference`` upload...) answered with a video object ``{id: "video_gen_<hex>",
object: "video", status: "queued", ...}``; ``GET /v1/videos/{id}`` moving through
``queued``, ``in_progress`` (with ``progress``) to ``completed`` or ``failed`` (with
``error: {code, message}``); the MP4 at ``/content``; ``DELETE`` aborting the work.
Errors are vLLM's OpenAI shape ``{"error": {"message", "type", "param", "code"}}``.

Faults: the shared ``Fault`` list (429/503 with ``Retry-After``), ``drop_create_answer``
(the create is admitted but the connection closes before the answer: a lost response),
``create_delay`` (a slow answer), ``gone`` (the machine vanished), ``fail`` (every
generation ends ``failed``). ``creates`` counts admitted generations: what a test checks
to prove nothing ran twice.
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any

from fakes._loopback import Fault, LoopbackFake, LoopbackHandler, retry_after_header

PATH = "/v1/videos"
FAIL_MARKER = "FAIL"


@dataclass
class FakeVideo:
    id: str
    fields: dict[str, str]
    files: dict[str, bytes]
    created: float
    aborted: bool = False
    downloaded: bool = False


@dataclass
class FakeVllmOmni(LoopbackFake):
    """The fake server; ``start()``/``stop()`` or use it as a context manager."""

    key: str | None = None
    """Bearer key the server demands (``vllm serve --api-key``); none: open."""
    queued_seconds: float = 0.05
    generating_seconds: float = 0.15
    fail: bool = False
    drop_create_answer: bool = False
    create_delay: float = 0.0
    videos: dict[str, FakeVideo] = field(default_factory=dict)
    max_active: int = 0
    gone: bool = False
    """The machine went away: every connection, even a kept-alive one, is cut unanswered."""
    """Most generations admitted and not yet downloaded, aborted or failed at once."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def creates(self) -> int:
        """Generations admitted (what a GPU would have worked on)."""
        with self._lock:
            return len(self.videos)

    @property
    def aborted(self) -> list[str]:
        with self._lock:
            return [video.id for video in self.videos.values() if video.aborted]

    def create_attempts(self) -> int:
        return len(self.recorded(lambda r: r.method == "POST" and r.path == PATH))

    def _handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def status_of(self, video: FakeVideo) -> tuple[str, int]:
        if video.aborted:
            return "failed", 0
        elapsed = time.monotonic() - video.created
        if elapsed < self.queued_seconds:
            return "queued", 0
        elapsed -= self.queued_seconds
        if elapsed < self.generating_seconds:
            return "in_progress", int(100 * elapsed / self.generating_seconds)
        if self.fail or FAIL_MARKER in video.fields.get("prompt", ""):
            return "failed", 100
        return "completed", 100

    def present(self, video: FakeVideo) -> dict[str, Any]:
        status, progress = self.status_of(video)
        error = None
        if status == "failed":
            message = "Request aborted" if video.aborted else "CUDA out of memory"
            error = {"code": 500, "message": message}
        return {
            "id": video.id,
            "object": "video",
            "model": video.fields.get("model") or "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            "prompt": video.fields.get("prompt", ""),
            "status": status,
            "progress": progress,
            "seconds": video.fields.get("seconds") or "4",
            "size": video.fields.get("size"),
            "quality": "default",
            "created_at": int(time.time()),
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "media_type": "video/mp4",
        }


def _parse_multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            files[str(name)] = payload
        else:
            fields[str(name)] = payload.decode()
    return fields, files


class _Handler(LoopbackHandler):
    api: FakeVllmOmni

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        if self.api.gone:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        super()._handle()

    def answer_fault(self, fault: Fault) -> None:
        message = {429: "Too many requests", 503: "Service Unavailable"}.get(
            fault.status, "Internal Server Error"
        )
        self._error(fault.status, message, retry_after_header(fault))

    def route(self, path: str, body: Any) -> None:
        if self.api.key is not None:
            scheme, _, key = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or key.strip() != self.api.key:
                self._json(401, {"error": "Unauthorized"})
                return
        parts = path.removeprefix(PATH).strip("/").split("/") if path.startswith(PATH) else None
        if parts is None:
            self._error(404, "Not Found")
        elif parts == [""] and self.command == "POST":
            self._create(body)
        elif len(parts) == 1 and self.command == "GET":
            video = self._video(parts[0])
            if video is not None:
                self._json(200, self.api.present(video))
        elif len(parts) == 1 and self.command == "DELETE":
            video = self._video(parts[0])
            if video is not None:
                video.aborted = True
                self._json(200, {"id": video.id, "deleted": True, "object": "video.deleted"})
        elif len(parts) == 2 and parts[1] == "content" and self.command == "GET":
            video = self._video(parts[0])
            if video is None:
                return
            if self.api.status_of(video)[0] != "completed":
                self._error(400, f"Video {video.id} is not completed")
                return
            video.downloaded = True
            self._send(200, self.api.video, {"Content-Type": "video/mp4"})
        else:
            self._error(405, "Method Not Allowed")

    def _video(self, video_id: str) -> FakeVideo | None:
        video = self.api.videos.get(video_id)
        if video is None:
            self._error(404, f"Video {video_id} not found")
        return video

    def _create(self, body: Any) -> None:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data") or not isinstance(body, bytes):
            self._error(400, "Expected multipart/form-data")
            return
        fields, files = _parse_multipart(content_type, body)
        if not fields.get("prompt"):
            self._error(422, "Field required: prompt")
            return
        video = FakeVideo(
            id=f"video_gen_{uuid.uuid4().hex}",
            fields=fields,
            files=files,
            created=time.monotonic(),
        )
        with self.api._lock:
            active = [
                v
                for v in self.api.videos.values()
                if not (v.downloaded or v.aborted or self.api.status_of(v)[0] == "failed")
            ]
            self.api.max_active = max(self.api.max_active, len(active) + 1)
            self.api.videos[video.id] = video
        if self.api.create_delay:
            time.sleep(self.api.create_delay)
        if self.api.drop_create_answer:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self._json(200, self.api.present(video))

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        kind = {400: "BadRequestError", 404: "NotFoundError", 422: "BadRequestError"}.get(
            status, "InternalServerError" if status >= 500 else "BadRequestError"
        )
        body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
        self._json(status, body, headers)
