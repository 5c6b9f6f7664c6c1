"""The HTTP edge from the hardening audit: Host, signed video URLs, headers, CORS, docs."""

from __future__ import annotations

import re
import time
import warnings
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support import LiveServer

pytestmark = pytest.mark.integration

T2V = {"model": "veo2", "prompt": "a paper boat on a river", "duration": 5}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    live = LiveServer(home=tmp_path_factory.mktemp("edge")).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def finished(server: LiveServer) -> dict:
    return server.wait(server.create(T2V).json()["id"])


def get_generation(server: LiveServer, generation_id: str, host: str | None = None):
    headers = server.headers()
    if host is not None:
        headers["Host"] = host
    return httpx.get(
        f"{server.url}/v2/video/generations",
        params={"generation_id": generation_id},
        headers=headers,
    )


# -- Host --------------------------------------------------------------------------------


def test_a_forged_host_never_reaches_video_urls(server: LiveServer, finished: dict) -> None:
    """``Host: evil.example`` used to come back as ``http://evil.example/files/...``."""
    response = get_generation(server, finished["id"], host="evil.example")
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith("Host 'evil.example' is not served here")
    assert "REELFORGE_ALLOWED_HOSTS" in message
    # Names the server is reached by are fine, and used.
    local = get_generation(server, finished["id"], host=f"localhost:{server.port}")
    assert local.json()["video"]["url"].startswith(f"http://localhost:{server.port}/files/")
    # Probes may use any address.
    health = httpx.get(f"{server.url}/health", headers={"Host": "10.1.2.3:8000"})
    assert health.status_code == 200


def test_public_url_wins_and_its_host_is_allowed(tmp_path) -> None:
    public = "https://videos.example.com"
    live = LiveServer(home=tmp_path, env={"REELFORGE_PUBLIC_URL": public}).start()
    try:
        done = live.wait(live.create(T2V).json()["id"])
        assert done["video"]["url"].startswith(f"{public}/files/videos/")
        assert get_generation(live, done["id"], host="videos.example.com").status_code == 200
        assert get_generation(live, done["id"], host="evil.example").status_code == 400
    finally:
        live.stop()


# -- signed, expiring video URLs ------------------------------------------------------------


def test_video_urls_are_signed_and_fresh_on_every_get(server: LiveServer, finished: dict) -> None:
    first = finished["video"]["url"]
    query = parse_qs(urlsplit(first).query)
    assert set(query) == {"expires", "signature"}
    assert 23 * 3600 < int(query["expires"][0]) - time.time() <= 24 * 3600
    time.sleep(1.1)
    again = get_generation(server, finished["id"]).json()["video"]["url"]
    assert again != first and httpx.get(again).status_code == 200
    assert httpx.get(first).status_code == 200  # the earlier one still works until it expires
    response = httpx.get(first, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206 and len(response.content) == 100


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        (lambda url: url.split("?")[0], "This video URL is not signed"),
        (lambda url: re.sub(r"expires=\d+", "expires=9999999999", url), "is not valid"),
        (lambda url: url.replace("signature=", "signature=x"), "is not valid"),
        (lambda url: url.replace("output.mp4", "other.mp4"), "is not valid"),
    ],
)
def test_tampered_video_urls_are_403(server: LiveServer, finished: dict, tamper, words) -> None:
    response = httpx.get(tamper(finished["video"]["url"]))
    assert response.status_code == 403
    message = response.json()["message"]
    assert words in message and "GET the generation again for a fresh video URL" in message


def test_video_urls_expire(tmp_path) -> None:
    live = LiveServer(home=tmp_path, env={"REELFORGE_VIDEO_URL_TTL": "2"}).start()
    try:
        done = live.wait(live.create(T2V).json()["id"])
        url = done["video"]["url"]
        assert httpx.get(url).status_code == 200
        time.sleep(3.1)
        expired = httpx.get(url)
        assert expired.status_code == 403
        assert "This video URL expired at" in expired.json()["message"]
        fresh = get_generation(live, done["id"]).json()["video"]["url"]
        assert httpx.get(fresh).status_code == 200
    finally:
        live.stop()


def test_ttl_zero_keeps_unsigned_urls(tmp_path) -> None:
    live = LiveServer(home=tmp_path, env={"REELFORGE_VIDEO_URL_TTL": "0"}).start()
    try:
        url = live.wait(live.create(T2V).json()["id"])["video"]["url"]
        assert "?" not in url and httpx.get(url).status_code == 200
    finally:
        live.stop()


# -- headers, CORS ----------------------------------------------------------------------------


def test_security_headers(server: LiveServer) -> None:
    for path in ("/health", "/v2/nothing", "/docs", "/openapi.json"):
        response = httpx.get(server.url + path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
    docs = httpx.get(f"{server.url}/docs")
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]


def preflight(server: LiveServer, origin: str) -> httpx.Response:
    return httpx.options(
        f"{server.url}/v2/video/generations",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_is_off_by_default(server: LiveServer) -> None:
    assert "access-control-allow-origin" not in preflight(server, "https://app.example").headers
    response = httpx.get(f"{server.url}/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_for_configured_origins(tmp_path) -> None:
    origin = "https://app.example"
    live = LiveServer(home=tmp_path, env={"REELFORGE_CORS_ORIGINS": origin}).start()
    try:
        allowed = preflight(live, origin)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == origin
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "x-goog-api-key" in allowed.headers["access-control-allow-headers"].lower()
        other = preflight(live, "https://evil.example")
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"
        response = httpx.get(
            f"{live.url}/v2/video/generations",
            params={"generation_id": "x"},
            headers={**live.headers(), "Origin": origin},
        )
        assert response.headers["access-control-allow-origin"] == origin
        assert "x-request-id" in response.headers["access-control-expose-headers"]
    finally:
        live.stop()


# -- docs and the OpenAPI document ---------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_need_no_cdn(server: LiveServer, page: str) -> None:
    html = httpx.get(server.url + page).text
    references = re.findall(r"(?:src|href)=['\"]([^'\"]+)", html)
    assert references
    assert not re.search(r"https?://", html), "the page loads something from elsewhere"
    for reference in references:
        asset = httpx.get(server.url + reference)
        assert asset.status_code == 200 and len(asset.content) > 1000, reference


def test_openapi_has_unique_operation_ids_and_json_schema_bounds(server: LiveServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    text = str(spec)
    assert "'ge':" not in text and "'le':" not in text
    post = spec["paths"]["/v2/video/generations"]["post"]["requestBody"]
    veo2 = post["content"]["application/json"]["schema"]["oneOf"][0]
    seed = veo2["properties"]["seed"]["anyOf"][0]
    assert (seed["minimum"], seed["maximum"]) == (0, 2**32 - 1)


def test_building_the_openapi_document_warns_about_nothing(tmp_path) -> None:
    from reelforge.api.app import create_app
    from reelforge.settings import Settings

    app = create_app(Settings(home=tmp_path, workers=0, _env_file=None))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app.openapi()
    assert [str(w.message) for w in caught] == []
