"""The SDK's shared core: URLs, images, error mapping, retries and the decisions behind them.

The retry and idempotency tests drive a real ``Client`` over ``httpx.MockTransport``
(the network edge) with an injected sleep, so they run in milliseconds.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image

import reelforge.client
from reelforge import AsyncClient, Client
from reelforge.client import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    DownloadError,
    Generation,
    GenerationFailed,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReelforgeClientError,
    ServerError,
    WaitTimeout,
)
from reelforge.client._core import Backoff, normalize_base_url, parse_content_range, same_origin
from reelforge.client._images import image_to_data_uri
from reelforge.client.errors import error_from_response, parse_field, parse_retry_after

pytestmark = pytest.mark.unit

BASE = "http://api.test"
PATH = "/v2/video/generations"
REELFORGE = {"x-reelforge-version": "0.1.0"}
GEN_ID = "6f1c0d8e-1111-4222-8333-944445555666:veo2"


# -- boundaries ---------------------------------------------------------------------------


def test_the_sdk_imports_no_server_code() -> None:
    """DESIGN.md: client/ depends on nothing of the server, so it works against any server.

    The one shared module it may use, ``reelforge.retrying``, imports only the standard
    library."""
    for file in Path(reelforge.client.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("reelforge"):
                names = [alias.name for alias in node.names]
                allowed = node.module == "reelforge" and names == ["__version__"]
                allowed = allowed or node.module == "reelforge.retrying"
                assert allowed or node.module.startswith("reelforge.client"), (file, node.module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("reelforge"), (file, alias.name)
    retrying = Path(reelforge.client.__file__).parent.parent / "retrying.py"
    for node in ast.walk(ast.parse(retrying.read_text())):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            modules += [] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", module


def test_importing_the_sdk_loads_no_server_dependencies() -> None:
    code = (
        "import sys, reelforge.client; "
        "print(sorted({'fastapi', 'sqlalchemy', 'av', 'uvicorn'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


# -- base URL, key, configuration ---------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://api.aimlapi.com/v2", "https://api.aimlapi.com"),
        ("https://api.aimlapi.com/v2/", "https://api.aimlapi.com"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("  http://host:1/prefix/v2/ ", "http://host:1/prefix"),
        ("https://host/v2beta", "https://host/v2beta"),
    ],
)
def test_base_url_normalisation(given: str, root: str) -> None:
    assert normalize_base_url(given) == root


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "ftp://host", "http://host/?a=1", ""])
def test_base_url_refuses_what_cannot_work(bad: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        normalize_base_url(bad)


def test_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFORGE_API_KEY", "env-key")
    monkeypatch.setenv("REELFORGE_BASE_URL", "http://env.test:9/v2")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": GEN_ID, "status": "queued"})

    with Client(transport=httpx.MockTransport(handler)) as client:
        assert client.base_url == "http://env.test:9"
        client.get(GEN_ID)
    assert str(seen[0].url).startswith("http://env.test:9/v2/video/generations?")
    assert seen[0].headers["authorization"] == "Bearer env-key"
    assert seen[0].headers["user-agent"].startswith("reelforge-python/")


def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REELFORGE_BASE_URL", raising=False)
    assert Client("k").base_url == "http://127.0.0.1:8000"


def test_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REELFORGE_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="REELFORGE_API_KEY"):
        Client(base_url=BASE)
    with pytest.raises(AuthenticationError):
        AsyncClient(base_url=BASE)


def test_repr_does_not_show_the_key() -> None:
    assert "secret" not in repr(Client("secret", BASE))


# -- images -------------------------------------------------------------------------------


def _image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_image_bytes_become_data_uris(fmt: str, mime: str) -> None:
    data = _image_bytes(fmt)
    uri = image_to_data_uri(data)
    assert uri.startswith(f"data:{mime};base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == data


def test_image_files_become_data_uris(tmp_path: Path) -> None:
    path = tmp_path / "photo.unusual-extension"
    path.write_bytes(_image_bytes("PNG"))
    assert image_to_data_uri(path).startswith("data:image/png;base64,")
    assert image_to_data_uri(str(path)) == image_to_data_uri(path)


@pytest.mark.parametrize(
    "value",
    ["https://example.com/a.jpg", "http://x/y", "data:image/png;base64,AAAA", "/9j/4AAQSkZJRg"],
)
def test_urls_data_uris_and_bare_base64_pass_unchanged(value: str) -> None:
    assert image_to_data_uri(value) == value


def test_refused_images_name_the_field(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    cases: list[object] = [b"plain text", text, str(text), str(tmp_path / "missing.jpg"), 42]
    for value in cases:
        with pytest.raises(InvalidRequestError) as caught:
            image_to_data_uri(value, "tail_image_url")
        assert caught.value.field == "tail_image_url"
        assert caught.value.status_code is None


def test_a_bad_image_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(500))
    with Client("k", BASE, transport=transport) as client, pytest.raises(InvalidRequestError):
        client.create("veo2/image-to-video", "x", image_url=b"%PDF-1.7 not an image")
    assert seen == []


# -- errors -------------------------------------------------------------------------------


def _error_body(status: int, message: str, request_id: str = "rid-body") -> bytes:
    return json.dumps(
        {
            "message": message,
            "path": PATH,
            "requestId": request_id,
            "statusCode": status,
            "timestamp": "2026-01-01T00:00:00.000Z",
        }
    ).encode()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (405, InvalidRequestError),
        (413, InvalidRequestError),
        (422, InvalidRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_status_codes_map_to_typed_errors(status: int, kind: type[Exception]) -> None:
    error = error_from_response(status, {}, _error_body(status, "nope"))
    assert type(error) is kind
    assert isinstance(error, ReelforgeClientError)
    assert (error.status_code, error.request_id, error.message) == (status, "rid-body", "nope")
    assert "rid-body" in str(error)


def test_permission_denied_is_an_authentication_error() -> None:
    assert issubclass(PermissionDeniedError, AuthenticationError)


def test_invalid_request_names_the_field() -> None:
    message = (
        "Body validation error: duration: Invalid enum value. Expected 5 | 6 | 7 | 8, received 9"
    )
    error = error_from_response(400, {}, _error_body(400, message))
    assert isinstance(error, InvalidRequestError)
    assert error.field == "duration"
    assert parse_field("Query validation error: generation_id: Required") == "generation_id"
    assert parse_field("Body validation error: Expected object, received array") is None
    assert parse_field("Body validation error!\nInvalid enum value") is None


def test_request_id_from_header_and_non_json_bodies() -> None:
    error = error_from_response(502, {"x-request-id": "rid-header"}, b"<html>bad gateway</html>")
    assert isinstance(error, ServerError)
    assert error.request_id == "rid-header"
    assert "bad gateway" in error.message
    assert error_from_response(500, {}, b"", reason="Internal Server Error").message == (
        "Internal Server Error"
    )


def test_rate_limit_error_carries_retry_after() -> None:
    error = error_from_response(429, {"retry-after": "7"}, _error_body(429, "Too Many Requests"))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("1.5") == 1.5
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30.0
    assert parse_retry_after(earlier, now=now) == 0.0
    for bad in (None, "", "soon", "-"):
        assert parse_retry_after(bad) is None


def test_backoff_is_bounded_full_jitter() -> None:
    backoff = Backoff(random=random.Random(1))
    for attempt in range(10):
        delays = [backoff.delay(attempt) for _ in range(200)]
        ceiling = min(20.0, 0.5 * 2**attempt)
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # jitter spans the whole range
    assert backoff.delay(3, retry_after=4.0) == 4.0
    assert backoff.delay(3, retry_after=0.0) == 0.0


def test_content_range_parsing() -> None:
    assert parse_content_range("bytes 100-199/1000") == (100, 1000)
    assert parse_content_range("bytes */1000") == (None, 1000)
    assert parse_content_range("bytes 0-9/*") == (0, None)
    assert parse_content_range(None) == (None, None)


def test_same_origin() -> None:
    assert same_origin("http://127.0.0.1:8000/files/x", "http://127.0.0.1:8000")
    assert same_origin("https://API.example/x", "https://api.example:443")
    assert not same_origin("http://localhost:8000/x", "http://127.0.0.1:8000")
    assert not same_origin("http://127.0.0.1:8001/x", "http://127.0.0.1:8000")
    assert not same_origin("https://127.0.0.1:8000/x", "http://127.0.0.1:8000")


# -- models -------------------------------------------------------------------------------


def test_models_keep_unknown_fields_and_accept_unknown_statuses() -> None:
    generation = Generation.model_validate(
        {
            "id": GEN_ID,
            "status": "waiting",
            "queue_position": 3,
            "video": None,
            "meta": {"usage": {"credits_used": 120000}, "region": "eu"},
        }
    )
    assert not generation.is_done and not generation.succeeded
    assert generation.model_extra == {"queue_position": 3}
    assert generation.meta is not None and generation.meta.model_extra == {"region": "eu"}
    assert generation.credits_used == 120000
    done = Generation.model_validate(
        {
            "id": GEN_ID,
            "status": "completed",
            "video": {"url": "https://cdn/x.mp4"},
            "completed_at": "2026-11-21T23:50:03.410000Z",
        }
    )
    assert done.is_done and done.succeeded and not done.failed
    assert done.video is not None and done.video.file_size is None
    assert done.completed_at == datetime(2026, 11, 21, 23, 50, 3, 410000, tzinfo=UTC)


# -- retries and idempotency (MockTransport) ----------------------------------------------


class Api:
    """A scripted server: each answer is a Response, an exception to raise, or a callable."""

    def __init__(self, *answers: object, health: httpx.Response | None = None) -> None:
        self.answers = list(answers)
        self.health = health or httpx.Response(404, json={"message": "Cannot GET /health"})
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/health":
            return self.health
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer) and not isinstance(answer, httpx.Response):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    def seen(self, method: str, path: str = PATH) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def raising(kind: type[httpx.TransportError]) -> Callable[[httpx.Request], Exception]:
    return lambda request: kind("simulated", request=request)


CREATED = httpx.Response(200, json={"id": GEN_ID, "status": "queued"})


def client_for(api: Api, sleeps: list[float], **options: object) -> Client:
    client = Client("key", BASE + "/v2", transport=httpx.MockTransport(api), **options)  # type: ignore[arg-type]
    client._sleep = sleeps.append
    return client


def test_create_is_not_retried_after_a_read_timeout_on_an_unknown_server() -> None:
    api = Api(raising(httpx.ReadTimeout), CREATED)
    sleeps: list[float] = []
    with client_for(api, sleeps) as client, pytest.raises(APITimeoutError) as caught:
        client.create("veo2", "a fox")
    assert len(api.seen("POST")) == 1
    assert len(api.seen("GET", "/health")) == 1  # probed once
    assert caught.value.may_have_been_created
    assert "may have been created" in str(caught.value)
    assert sleeps == []


def test_create_is_retried_with_the_same_key_once_reelforge_was_seen() -> None:
    generation = {"id": GEN_ID, "status": "queued"}
    api = Api(
        httpx.Response(200, json=generation, headers=REELFORGE),
        raising(httpx.ReadTimeout),
        httpx.Response(503, json={"message": "busy"}),
        httpx.Response(200, json=generation, headers=REELFORGE),
    )
    sleeps: list[float] = []
    with client_for(api, sleeps) as client:
        client.get(GEN_ID)
        assert client.create("veo2", "a fox", idempotency_key="order-1").id == GEN_ID
    posts = api.seen("POST")
    assert len(posts) == 3
    assert {p.headers["idempotency-key"] for p in posts} == {"order-1"}
    assert api.seen("GET", "/health") == []
    assert len(sleeps) == 2


def test_the_health_probe_finds_reelforge_and_is_cached() -> None:
    api = Api(
        raising(httpx.RemoteProtocolError),
        CREATED,
        health=httpx.Response(200, json={"status": "ok"}, headers=REELFORGE),
    )
    sleeps: list[float] = []
    with client_for(api, sleeps) as client:
        created = client.create("veo2", "a fox")
        assert created.id == GEN_ID
        posts = api.seen("POST")
        assert len(posts) == 2
        assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
        api.answers = [raising(httpx.ReadError), CREATED]
        client.create("veo2", "again")
    assert len(api.seen("GET", "/health")) == 1


def test_create_5xx_on_the_real_api_is_not_retried_and_says_why() -> None:
    api = Api(httpx.Response(503, json={"message": "Service unavailable", "requestId": "r1"}))
    sleeps: list[float] = []
    with client_for(api, sleeps) as client, pytest.raises(ServerError) as caught:
        client.create("veo2", "a fox")
    assert len(api.seen("POST")) == 1
    assert caught.value.may_have_been_created
    assert caught.value.request_id == "r1"
    assert "Idempotency-Key" in str(caught.value)


def test_create_is_retried_when_the_request_never_left() -> None:
    api = Api(raising(httpx.ConnectError), raising(httpx.ConnectTimeout), CREATED)
    sleeps: list[float] = []
    with client_for(api, sleeps) as client:
        assert client.create("veo2", "a fox").id == GEN_ID
    assert len(api.seen("POST")) == 3
    assert api.seen("GET", "/health") == []
    assert len(sleeps) == 2


def test_429_is_retried_honouring_retry_after() -> None:
    api = Api(
        httpx.Response(429, headers={"Retry-After": "2"}, json={"message": "Too Many Requests"}),
        httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "Too Many Requests"}),
        CREATED,
    )
    sleeps: list[float] = []
    with client_for(api, sleeps) as client:
        assert client.create("veo2", "a fox").id == GEN_ID
    assert sleeps == [2.0, 0.0]
    assert api.seen("GET", "/health") == []


def test_a_long_retry_after_is_raised_not_slept() -> None:
    api = Api(httpx.Response(429, headers={"Retry-After": "3600"}, json={"message": "later"}))
    sleeps: list[float] = []
    with client_for(api, sleeps) as client, pytest.raises(RateLimitError) as caught:
        client.get(GEN_ID)
    assert caught.value.retry_after == 3600.0
    assert sleeps == []


def test_get_retries_transient_failures_up_to_max_retries() -> None:
    api = Api(
        raising(httpx.ReadTimeout),
        httpx.Response(502),
        httpx.Response(504),
        raising(httpx.ConnectError),
        httpx.Response(500, json={"message": "Internal server error"}),
    )
    sleeps: list[float] = []
    with client_for(api, sleeps, max_retries=4) as client, pytest.raises(ServerError):
        client.get(GEN_ID)
    assert len(api.seen("GET")) == 5
    assert len(sleeps) == 4
    assert all(0 <= s <= min(20.0, 0.5 * 2**n) for n, s in enumerate(sleeps))


def test_a_408_is_retried_for_reads_and_for_creates() -> None:
    """408: the server gave up waiting for the request, so it started nothing."""
    timed_out = httpx.Response(408, json={"message": "Request Timeout"})
    generation = httpx.Response(200, json={"id": GEN_ID, "status": "queued"})
    api = Api(timed_out, generation)
    sleeps: list[float] = []
    with client_for(api, sleeps) as client:
        assert client.get(GEN_ID).status == "queued"
        api.answers = [timed_out, CREATED]
        assert client.create("veo2", "a fox").id == GEN_ID
    assert [r.method for r in api.requests] == ["GET", "GET", "POST", "POST"]
    assert len(sleeps) == 2 and all(0 <= s <= 0.5 for s in sleeps)
    assert api.seen("GET", "/health") == []  # a 408 is not ambiguous: no probe needed


def test_get_connection_errors_are_typed() -> None:
    api = Api(raising(httpx.ConnectError))
    with client_for(api, [], max_retries=1) as client, pytest.raises(APIConnectionError):
        client.get(GEN_ID)


@pytest.mark.parametrize(("status", "kind"), [(404, NotFoundError), (400, InvalidRequestError)])
def test_get_does_not_retry_client_errors(status: int, kind: type[Exception]) -> None:
    api = Api(httpx.Response(status, json={"message": "no"}))
    sleeps: list[float] = []
    with client_for(api, sleeps) as client, pytest.raises(kind):
        client.get(GEN_ID)
    assert len(api.seen("GET")) == 1 and sleeps == []


def test_async_client_makes_the_same_decisions() -> None:
    api = Api(
        httpx.Response(429, headers={"Retry-After": "1"}, json={"message": "slow down"}),
        httpx.Response(503, json={"message": "Service unavailable"}),
    )
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def main() -> None:
        async with AsyncClient("key", BASE, transport=httpx.MockTransport(api)) as client:
            client._sleep = fake_sleep
            with pytest.raises(ServerError) as caught:
                await client.create("veo2", "a fox")
            assert caught.value.may_have_been_created

    asyncio.run(main())
    assert sleeps == [1.0]
    assert len(api.seen("POST")) == 2
    assert len(api.seen("GET", "/health")) == 1


# -- waiting ------------------------------------------------------------------------------


def states(*statuses: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    answers = []
    for status in statuses:
        body: dict[str, object] = {"id": GEN_ID, "status": status}
        if status == "completed":
            body["video"] = {"url": "https://cdn.test/v.mp4"}
        if status == "error":
            body["error"] = {"name": "ImageFetchError", "message": "image_url returned HTTP 404"}
        answers.append(httpx.Response(200, json=body, headers=headers))
    return answers


def test_wait_long_polls_when_the_server_honours_it() -> None:
    headers = {**REELFORGE, "X-Reelforge-Wait": "30"}
    api = Api(*states("queued", "generating", "completed", headers=headers))
    sleeps: list[float] = []
    seen: list[str] = []
    with client_for(api, sleeps) as client:
        done = client.wait(GEN_ID, on_progress=lambda g: seen.append(g.status))
    assert done.succeeded
    gets = api.seen("GET")
    assert "wait" not in gets[0].url.params  # the first look is immediate
    assert all(float(g.url.params["wait"]) <= 30 for g in gets[1:])
    assert sleeps == []
    assert seen == ["queued", "generating", "completed"]


def test_wait_polls_at_growing_intervals_when_wait_is_ignored() -> None:
    api = Api(*states(*["queued"] * 3, *["generating"] * 4, "completed"))
    sleeps: list[float] = []
    with client_for(api, sleeps, poll_interval=1.0) as client:
        assert client.wait(GEN_ID).succeeded
    gets = api.seen("GET")
    assert len(gets) == 8
    assert sum("wait" in g.url.params for g in gets) == 1  # tried once, then never again
    assert sleeps == pytest.approx([1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 10.0][: len(sleeps)])
    assert len(sleeps) == 6


def test_wait_falls_back_when_the_server_refuses_the_wait_parameter() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "wait" in request.url.params:
            return httpx.Response(400, json={"message": "Query validation error: wait: unknown"})
        return states("completed" if len(api.requests) > 3 else "queued")[0]

    api = Api(answer)
    with client_for(api, []) as client:
        assert client.wait(GEN_ID).succeeded
    assert sum("wait" in g.url.params for g in api.seen("GET")) == 1


def test_wait_raises_generation_failed_with_the_id() -> None:
    api = Api(*states("queued", "error"))
    client = client_for(api, [], poll_interval=0.01)
    with client, pytest.raises(GenerationFailed) as caught:
        client.wait(GEN_ID)
    error = caught.value
    assert (error.name, error.message, error.generation_id) == (
        "ImageFetchError",
        "image_url returned HTTP 404",
        GEN_ID,
    )
    assert error.generation.failed
    assert "ImageFetchError" in str(error)


def test_wait_timeout_carries_the_id() -> None:
    api = Api(*states("queued"))
    with client_for(api, [], poll_interval=0.01) as client, pytest.raises(WaitTimeout) as caught:
        client.wait(GEN_ID, timeout=0.0)
    assert caught.value.generation_id == GEN_ID
    assert isinstance(caught.value, TimeoutError)


def test_errors_while_waiting_carry_the_id() -> None:
    api = Api(httpx.Response(401, json={"message": "bad key"}))
    with client_for(api, []) as client, pytest.raises(AuthenticationError) as caught:
        client.wait(GEN_ID)
    assert caught.value.generation_id == GEN_ID


# -- downloads ----------------------------------------------------------------------------

VIDEO = bytes(range(256)) * 40


def cdn(
    log: list[httpx.Request], *, ignore_range: bool = False
) -> Callable[[httpx.Request], httpx.Response]:
    def serve(request: httpx.Request) -> httpx.Response:
        log.append(request)
        wanted = request.headers.get("range")
        if wanted and not ignore_range:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            return httpx.Response(
                206,
                content=VIDEO[start:],
                headers={"Content-Range": f"bytes {start}-{len(VIDEO) - 1}/{len(VIDEO)}"},
            )
        return httpx.Response(200, content=VIDEO)

    return serve


def completed(url: str, size: int | None = len(VIDEO)) -> Generation:
    video = {"url": url, "file_size": size}
    return Generation.model_validate({"id": GEN_ID, "status": "completed", "video": video})


@pytest.mark.parametrize(
    ("url", "keyed"),
    [
        ("http://api.test/files/videos/t/output.mp4", True),
        ("http://cdn.test/output.mp4", False),
        ("http://api.test:8443/output.mp4", False),
        ("https://api.test/output.mp4", False),
    ],
)
def test_the_key_goes_only_to_the_api_origin(tmp_path: Path, url: str, keyed: bool) -> None:
    log: list[httpx.Request] = []
    with Client("secret", BASE, transport=httpx.MockTransport(cdn(log))) as client:
        path = client.download(completed(url), tmp_path / "v.mp4")
    assert path.read_bytes() == VIDEO
    assert ("authorization" in log[0].headers) is keyed


def test_an_existing_part_file_is_resumed(tmp_path: Path) -> None:
    target = tmp_path / "v.mp4"
    (tmp_path / "v.mp4.part").write_bytes(VIDEO[:1000])
    log: list[httpx.Request] = []
    progress: list[tuple[int, int | None]] = []
    with Client("k", BASE, transport=httpx.MockTransport(cdn(log))) as client:
        client.download(
            completed("http://cdn.test/v.mp4"), target, on_progress=lambda *p: progress.append(p)
        )
    assert target.read_bytes() == VIDEO
    assert not (tmp_path / "v.mp4.part").exists()
    assert log[0].headers["range"] == "bytes=1000-"
    assert progress[-1] == (len(VIDEO), len(VIDEO))


def test_a_200_answer_to_a_range_restarts_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "v.mp4"
    (tmp_path / "v.mp4.part").write_bytes(b"stale bytes of something else")
    log: list[httpx.Request] = []
    transport = httpx.MockTransport(cdn(log, ignore_range=True))
    with Client("k", BASE, transport=transport) as client:
        client.download("http://cdn.test/v.mp4", target)
    assert target.read_bytes() == VIDEO
    assert len(log) == 1


def test_a_size_mismatch_is_a_download_error(tmp_path: Path) -> None:
    log: list[httpx.Request] = []
    with (
        Client("k", BASE, transport=httpx.MockTransport(cdn(log))) as client,
        pytest.raises(DownloadError) as caught,
    ):
        client.download(completed("http://cdn.test/v.mp4", size=123), tmp_path / "v.mp4")
    assert caught.value.generation_id == GEN_ID
    assert not (tmp_path / "v.mp4").exists()


def test_a_missing_video_is_a_download_error(tmp_path: Path) -> None:
    gone = Api(httpx.Response(404, json={"message": "no such file"}))
    with Client("k", BASE, transport=httpx.MockTransport(gone)) as client:
        with pytest.raises(DownloadError) as caught:
            client.download(completed("http://cdn.test/v.mp4"), tmp_path / "v.mp4")
        assert caught.value.status_code == 404
        pending = Generation.model_validate({"id": GEN_ID, "status": "queued"})
        with pytest.raises(DownloadError, match="no video"):
            client.download(pending, tmp_path / "v.mp4")


def test_an_expired_video_url_is_refreshed_and_the_download_resumes(tmp_path: Path) -> None:
    """Signed video URLs expire (403): the SDK GETs the generation for a fresh one and
    goes on from where it stopped, with Range."""
    fresh = "http://api.test/files/videos/t/output.mp4?expires=2&signature=new"
    log: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        log.append(request)
        if request.url.path == PATH:
            return httpx.Response(200, json=completed(fresh).model_dump(mode="json"))
        if request.url.params.get("signature") != "new":
            return httpx.Response(403, json={"message": "This video URL expired"})
        first = int(request.headers.get("range", "bytes=0-")[6:-1])
        headers = {"content-range": f"bytes {first}-{len(VIDEO) - 1}/{len(VIDEO)}"}
        return httpx.Response(206 if first else 200, content=VIDEO[first:], headers=headers)

    (tmp_path / "v.mp4.part").write_bytes(VIDEO[:500])
    stale = completed("http://api.test/files/videos/t/output.mp4?expires=1&signature=old")
    with Client("k", BASE, transport=httpx.MockTransport(serve)) as client:
        path = client.download(stale, tmp_path / "v.mp4")
    assert path.read_bytes() == VIDEO
    assert [r.url.path for r in log] == [
        "/files/videos/t/output.mp4",
        PATH,
        "/files/videos/t/output.mp4",
    ]
    assert log[-1].headers["range"] == "bytes=500-"
