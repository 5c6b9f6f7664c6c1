"""Google's own Veo API against a live server: the real google-genai SDK in Vertex AI
mode (what Veo users write today) and plain HTTP for the Gemini API's REST form; the
same jobs, keys and files as the AI/ML API and OpenAI doors."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from support import LiveServer, encode_image, inspect_mp4, picture

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 120.0


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> LiveServer:
    live = LiveServer(home=tmp_path_factory.mktemp("google"), env={"REELFORGE_WORKERS": "2"})
    live.start()
    yield live
    live.stop()


def sdk(server: LiveServer, key: str | None = None, **options: object) -> genai.Client:
    return genai.Client(
        vertexai=True,
        api_key=key or server.key,
        http_options=types.HttpOptions(base_url=server.url, **options),
    )


@pytest.fixture(scope="module")
def client(server: LiveServer) -> genai.Client:
    return sdk(server)


def finish(client: genai.Client, operation: types.GenerateVideosOperation):
    """Poll as Google's samples do, with a deadline instead of a fixed count."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not operation.done:
        assert time.monotonic() < deadline, operation
        time.sleep(0.2)
        operation = client.operations.get(operation)
    return operation


def image(seed: int, size: tuple[int, int] = (1280, 720)) -> types.Image:
    return types.Image(
        image_bytes=encode_image(picture(size, seed=seed), "PNG"), mime_type="image/png"
    )


def video_of(operation, index: int, tmp_path: Path):
    generated = operation.result.generated_videos[index].video
    assert generated.mime_type == "video/mp4" and generated.video_bytes
    target = tmp_path / f"v{index}.mp4"
    target.write_bytes(generated.video_bytes)
    return inspect_mp4(target)


def aimlapi_document(server: LiveServer, operation_name: str, model: str) -> dict:
    job_uuid = operation_name.rsplit("/", 1)[-1]
    generation_id = f"{uuid.UUID(hex=job_uuid)}:{model}"
    answer = httpx.get(
        f"{server.url}/v2/video/generations",
        params={"generation_id": generation_id},
        headers=server.headers(),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_text_to_video_on_veo_3_with_seed_and_audio(
    server: LiveServer, client: genai.Client, tmp_path: Path
) -> None:
    operation = client.models.generate_videos(
        model="veo-3.0-generate-001",
        source=types.GenerateVideosSource(prompt="a lighthouse at dusk, waves below"),
        config=types.GenerateVideosConfig(
            duration_seconds=4, seed=1234, generate_audio=True, aspect_ratio="9:16"
        ),
    )
    assert operation.name.startswith("publishers/google/models/veo-3.0-generate-001/operations/")
    done = finish(client, operation)
    assert done.error is None and done.result.rai_media_filtered_count == 0
    facts = video_of(done, 0, tmp_path)
    assert (facts.codec, facts.width, facts.height, facts.frames) == ("h264", 720, 1280, 4 * 24)
    assert facts.audio_codec == "aac" and facts.audio_duration == pytest.approx(4, abs=0.1)
    # The same job through the AI/ML API door, with the seed and model Google's call chose.
    document = aimlapi_document(server, done.name, "google/veo3")
    assert document["status"] == "completed"
    again = finish(
        client,
        client.models.generate_videos(
            model="veo-3.0-generate-001",
            source=types.GenerateVideosSource(prompt="a lighthouse at dusk, waves below"),
            config=types.GenerateVideosConfig(
                duration_seconds=4, seed=1234, generate_audio=True, aspect_ratio="9:16"
            ),
        ),
    )
    same = video_of(again, 0, tmp_path)
    assert np.array_equal(same.first, facts.first), "one seed, one picture"


def test_image_to_video_starts_from_the_image_and_shows_in_every_list(
    server: LiveServer, client: genai.Client, tmp_path: Path
) -> None:
    operation = finish(
        client,
        client.models.generate_videos(
            model="veo-3.1-generate-preview",
            source=types.GenerateVideosSource(prompt="the scene comes alive", image=image(5)),
            config=types.GenerateVideosConfig(duration_seconds=4, resolution="720p"),
        ),
    )
    facts = video_of(operation, 0, tmp_path)
    assert (facts.width, facts.height, facts.frames) == (1280, 720, 96)
    expected = np.asarray(picture((1280, 720), seed=5).convert("RGB"), dtype=np.int16)
    assert np.abs(facts.first.astype(np.int16) - expected).mean() < 12
    hex_id = operation.name.rsplit("/", 1)[-1]
    document = aimlapi_document(server, operation.name, "google/veo-3.1-i2v")
    assert document["status"] == "completed"
    listed = httpx.get(f"{server.url}/v2/video/generations", headers=server.headers()).json()
    assert document["id"] in [item["id"] for item in listed["data"]]
    openai_list = httpx.get(f"{server.url}/v1/videos", headers=server.headers()).json()
    assert f"video_{hex_id}" in [video["id"] for video in openai_list["data"]]
    other_key = httpx.get(f"{server.url}/v1/videos", headers=server.headers(server.keys[1]))
    assert f"video_{hex_id}" not in [video["id"] for video in other_key.json()["data"]]


def test_first_and_last_frame(server: LiveServer, client: genai.Client, tmp_path: Path) -> None:
    operation = finish(
        client,
        client.models.generate_videos(
            model="veo-3.1-fast-generate-001",
            source=types.GenerateVideosSource(prompt="from one to the other", image=image(1)),
            config=types.GenerateVideosConfig(duration_seconds=4, last_frame=image(2)),
        ),
    )
    facts = video_of(operation, 0, tmp_path)
    assert facts.frames == 96
    assert (
        aimlapi_document(server, operation.name, "google/veo-3.1-first-last-image-to-video-fast")[
            "status"
        ]
        == "completed"
    )


def test_reference_images_and_an_extension_on_veo_3_1(
    server: LiveServer, client: genai.Client, tmp_path: Path
) -> None:
    references = finish(
        client,
        client.models.generate_videos(
            model="veo-3.1-generate-001",
            source=types.GenerateVideosSource(prompt="the two of them meet"),
            config=types.GenerateVideosConfig(
                duration_seconds=8,  # the only length Veo 3.1 makes from references
                reference_images=[
                    types.VideoGenerationReferenceImage(image=image(6), reference_type="ASSET"),
                    types.VideoGenerationReferenceImage(image=image(7), reference_type="ASSET"),
                ],
            ),
        ),
    )
    made = video_of(references, 0, tmp_path)
    document = aimlapi_document(server, references.name, "google/veo-3.1-reference-to-video")
    assert document["status"] == "completed" and made.frames == 8 * 24
    source = references.result.generated_videos[0].video
    extended = finish(
        client,
        client.models.generate_videos(
            model="veo-3.1-generate-001",
            source=types.GenerateVideosSource(prompt="and walk on", video=source),
        ),
    )
    (tmp_path / "extended").mkdir()
    longer = video_of(extended, 0, tmp_path / "extended")
    assert longer.frames > made.frames
    assert aimlapi_document(server, extended.name, "google/veo3-1-extend-video")["status"] == (
        "completed"
    )


def test_sample_count_makes_that_many_videos(client: genai.Client, tmp_path: Path) -> None:
    operation = finish(
        client,
        client.models.generate_videos(
            model="veo-3.0-fast-generate-001",
            source=types.GenerateVideosSource(prompt="two takes of a red kite"),
            config=types.GenerateVideosConfig(number_of_videos=2, duration_seconds=4),
        ),
    )
    assert len(operation.result.generated_videos) == 2
    first, second = video_of(operation, 0, tmp_path), video_of(operation, 1, tmp_path)
    assert first.frames == second.frames == 96
    assert not np.array_equal(first.first, second.first), "each sample has its own seed"


def test_a_broken_image_is_refused_where_google_names_it(client: genai.Client) -> None:
    png = encode_image(picture((1280, 720), seed=11), "PNG")
    broken = types.Image(image_bytes=png[: len(png) // 3], mime_type="image/png")
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_videos(
            model="veo-3.0-generate-001",
            source=types.GenerateVideosSource(prompt="never made", image=broken),
        )
    assert raised.value.code == 400
    assert raised.value.message.startswith("instances[0].image could not be decoded as PNG")


def test_a_cancelled_generation_is_the_operations_error(
    server: LiveServer, client: genai.Client
) -> None:
    operation = client.models.generate_videos(
        model="veo-3.0-generate-001",
        source=types.GenerateVideosSource(prompt="stopped on /v2"),
        config=types.GenerateVideosConfig(duration_seconds=8),
    )
    job = f"{uuid.UUID(hex=operation.name.rsplit('/', 1)[-1])}:google/veo3"
    cancel = httpx.post(
        f"{server.url}/v2/video/generations/cancel",
        params={"generation_id": job},
        headers=server.headers(),
    )
    assert cancel.status_code == 200, cancel.text  # 8 s take far longer than this call
    done = finish(client, operation)
    assert done.response is None
    assert done.error["code"] == 1 and "cancel" in done.error["message"].lower()


def test_project_form_and_bearer_token(server: LiveServer) -> None:
    answer = httpx.post(
        f"{server.url}/v1/projects/p1/locations/us-central1/publishers/google/models/"
        "veo-2.0-generate-001:predictLongRunning",
        json={"instances": [{"prompt": "a fox"}], "parameters": {"durationSeconds": 5}},
        headers=server.headers(),
    )
    assert answer.status_code == 200, answer.text
    name = answer.json()["name"]
    assert name.startswith("projects/p1/locations/us-central1/publishers/google/models/")
    fetched = httpx.post(
        f"{server.url}/v1/{name.rpartition('/operations/')[0]}:fetchPredictOperation",
        json={"operationName": name},
        headers={"x-goog-api-key": server.key},
    )
    assert fetched.status_code == 200 and fetched.json()["name"] == name


@pytest.mark.parametrize(
    ("model", "config", "code", "status", "words"),
    [
        ("veo-9.9-generate-001", {}, 404, "NOT_FOUND", "is not served here"),
        (
            "veo-3.0-generate-001",
            {"duration_seconds": 5},
            400,
            "INVALID_ARGUMENT",
            "parameters.durationSeconds",
        ),
        (
            "veo-3.0-generate-001",
            {"last_frame": None},
            400,
            "INVALID_ARGUMENT",
            "does not take instances[0].image, instances[0].lastFrame",
        ),
        (
            "veo-2.0-generate-001",
            {"generate_audio": True},
            400,
            "INVALID_ARGUMENT",
            "parameters.generateAudio is not offered",
        ),
        ("veo-3.0-generate-001", {"number_of_videos": 5}, 400, "INVALID_ARGUMENT", "sampleCount"),
    ],
)
def test_what_a_model_cannot_do_is_a_typed_sdk_error(
    client: genai.Client, model, config, code, status, words
) -> None:
    source = types.GenerateVideosSource(prompt="a cat")
    if "last_frame" in config:
        config = {"last_frame": image(3)}
        source = types.GenerateVideosSource(prompt="a cat", image=image(4))
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_videos(
            model=model, source=source, config=types.GenerateVideosConfig(**config)
        )
    assert (raised.value.code, raised.value.status) == (code, status)
    assert words in raised.value.message


def test_a_wrong_key_and_another_keys_operation(server: LiveServer, client: genai.Client) -> None:
    with sdk(server, key="not-a-key") as stranger, pytest.raises(errors.ClientError) as raised:
        stranger.models.generate_videos(
            model="veo-3.0-generate-001", source=types.GenerateVideosSource(prompt="x")
        )
    assert (raised.value.code, raised.value.status) == (401, "UNAUTHENTICATED")
    operation = client.models.generate_videos(
        model="veo-3.0-generate-001",
        source=types.GenerateVideosSource(prompt="mine"),
        config=types.GenerateVideosConfig(duration_seconds=4),
    )
    with sdk(server, key=server.keys[1]) as other, pytest.raises(errors.ClientError) as raised:
        other.operations.get(operation)
    assert (raised.value.code, raised.value.status) == (404, "NOT_FOUND")


def test_gemini_rest_form_with_file_download(server: LiveServer, tmp_path: Path) -> None:
    base = f"{server.url}/v1beta"
    start = httpx.post(
        f"{base}/models/veo-3.1-lite-generate-preview:predictLongRunning",
        params={"key": server.key},
        json={
            "instances": [
                {
                    "prompt": "paper lanterns rising",
                    "image": {
                        "bytesBase64Encoded": base64.b64encode(
                            encode_image(picture((1280, 720), seed=9), "PNG")
                        ).decode(),
                        "mimeType": "image/png",
                    },
                }
            ],
            "parameters": {"durationSeconds": 4, "aspectRatio": "16:9", "generateAudio": False},
        },
    )
    assert start.status_code == 200, start.text
    name = start.json()["name"]
    assert name.startswith("models/veo-3.1-lite-generate-preview/operations/")
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        operation = httpx.get(f"{base}/{name}", headers={"x-goog-api-key": server.key}).json()
        if operation["done"]:
            break
        assert time.monotonic() < deadline, operation
        time.sleep(0.2)
    samples = operation["response"]["generateVideoResponse"]["generatedSamples"]
    uri = samples[0]["video"]["uri"]
    file_id = uri.split("/files/")[1].split(":")[0]
    assert file_id.isalnum() and file_id == file_id.lower()
    video = httpx.get(uri, headers={"x-goog-api-key": server.key})
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "g.mp4").write_bytes(video.content)
    facts = inspect_mp4(tmp_path / "g.mp4")
    assert (facts.width, facts.height, facts.frames, facts.audio_codec) == (1280, 720, 96, None)
    part = httpx.get(uri, headers={"x-goog-api-key": server.key, "Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert httpx.get(f"{uri}&key={server.key}").content == video.content
    unauthenticated = httpx.get(uri)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["status"] == "UNAUTHENTICATED"


def test_gemini_webhook_config_becomes_the_jobs_webhook(server: LiveServer) -> None:
    """Fixed keys have no signing secret, so the mapped webhook is refused for them, in
    Google's shape and naming the webhook."""
    answer = httpx.post(
        f"{server.url}/v1beta/models/veo-3.0-generate-001:predictLongRunning",
        headers={"x-goog-api-key": server.key},
        json={
            "instances": [{"prompt": "x"}],
            "webhookConfig": {"uris": ["https://hooks.example.com/veo"]},
        },
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and "webhook" in error["message"]


def test_unknown_names_and_bad_json_are_refused(server: LiveServer) -> None:
    url = f"{server.url}/v1beta1/publishers/google/models/veo-3.0-generate-001:predictLongRunning"
    unknown = httpx.post(
        url,
        headers={"x-goog-api-key": server.key},
        json={"instances": [{"prompt": "x"}], "parameters": {"fps": 60}},
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == (
        'Invalid JSON payload received. Unknown name "parameters.fps"'
    )
    broken = httpx.post(url, headers={"x-goog-api-key": server.key}, content=b"{")
    assert broken.json() == {
        "error": {
            "code": 400,
            "message": "Invalid JSON payload received",
            "status": "INVALID_ARGUMENT",
        }
    }
