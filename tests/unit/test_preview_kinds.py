"""The preview engine for every kind of input: reference images appear whole, first and
last frames are the given images, an extension holds its input and continues it, and
audio covers the whole clip. Frames are checked raw and after encoding (PyAV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reelforge.engines.base import GenerationRequest, Inputs, JobContext, VideoInput
from reelforge.engines.preview import PreviewEngine
from reelforge.engines.preview.compose import ReferencesToVideo
from reelforge.engines.preview.scene import parse_scene
from reelforge.engines.preview.text import TextToVideo
from reelforge.errors import InvalidVideo
from reelforge.media.encode import encode_mp4
from reelforge.media.fit import fit_frame
from reelforge.media.videos import probe_video
from support import difference, inspect_mp4, picture
from video_samples import numbered_frame, write_video

pytestmark = pytest.mark.unit

SMALL = (320, 180)


def request(model: str, seconds: int = 1, audio: bool = False, **extra) -> GenerationRequest:
    return GenerationRequest(
        model=model,
        prompt="a ballerina twirls in a meadow, slow zoom in",
        duration_seconds=seconds,
        width=SMALL[0],
        height=SMALL[1],
        seed=11,
        generate_audio=audio,
        **extra,
    )


def render(req: GenerationRequest, inputs: Inputs) -> list[np.ndarray]:
    clip = PreviewEngine().generate(req, inputs, JobContext())
    assert clip.frames is not None
    frames = list(clip.frames)
    assert len(frames) == clip.frame_count
    return frames


def encoded(req: GenerationRequest, inputs: Inputs, tmp_path: Path):
    clip = PreviewEngine().generate(req, inputs, JobContext())
    encode_mp4(clip, tmp_path / "out.mp4", preset="ultrafast", threads=1)
    return inspect_mp4(tmp_path / "out.mp4")


def test_the_engine_takes_every_kind_of_input() -> None:
    kinds = PreviewEngine().capabilities("google/veo3-1-extend-video").inputs
    assert kinds == {"text", "image", "last_frame", "reference_images", "video"}


def test_reference_images_appear_whole_on_their_cards() -> None:
    references = (picture((600, 400), seed=3), picture((300, 500), seed=4))
    model = "google/veo-3.1-reference-to-video"
    frames = render(request(model), Inputs(references=references))
    scene = parse_scene("x", None, 11)
    layout = ReferencesToVideo(TextToVideo(scene, SMALL, 24, 24, 11, "x"), references, SMALL, 24)
    assert layout.side >= 60
    for index in (0, 11, 23):
        for reference, box in zip(references, layout.boxes(index), strict=True):
            card = frames[index][box.top : box.top + box.height, box.left : box.left + box.width]
            assert np.array_equal(card, np.asarray(fit_frame(reference, (box.width, box.height))))
    assert layout.boxes(0) != layout.boxes(12)  # the cards float


def test_reference_images_survive_encoding(tmp_path: Path) -> None:
    references = (picture((600, 400), seed=5),)
    req = request("google/veo-3.1-reference-to-video", audio=True)
    facts = encoded(req, Inputs(references=references), tmp_path)
    scene = parse_scene("x", None, 11)
    layout = ReferencesToVideo(TextToVideo(scene, SMALL, 24, 24, 11, "x"), references, SMALL, 24)
    [box] = layout.boxes(0)
    card = facts.first[box.top : box.top + box.height, box.left : box.left + box.width]
    expected = np.asarray(fit_frame(references[0], (box.width, box.height)))
    assert difference(card, expected, block=4) < 6
    assert facts.audio_codec == "aac" and abs(facts.audio_duration - 1.0) < 0.05


def test_first_and_last_frames_are_the_given_images(tmp_path: Path) -> None:
    first, last = picture((800, 450), seed=1), Image.new("RGB", (400, 300), (30, 190, 80))
    inputs = Inputs(image=first, last_frame=last)
    model = "google/veo-3.1-first-last-image-to-video"
    frames = render(request(model, seconds=2), inputs)
    assert np.array_equal(frames[0], np.asarray(fit_frame(first, SMALL)))
    assert np.array_equal(frames[-1], np.asarray(fit_frame(last, SMALL)))
    facts = encoded(request(model, seconds=2, audio=True), inputs, tmp_path)
    assert facts.frames == 48
    assert difference(facts.first, np.asarray(fit_frame(first, SMALL))) < 4
    assert difference(facts.last, np.asarray(fit_frame(last, SMALL))) < 4
    assert facts.audio_codec == "aac"


def test_a_last_frame_alone_ends_a_text_scene_on_it() -> None:
    last = picture((640, 360), seed=9)
    frames = render(request("veo-3.1-lite-generate-001"), Inputs(last_frame=last))
    assert np.array_equal(frames[-1], np.asarray(fit_frame(last, SMALL)))
    assert difference(frames[0], np.asarray(fit_frame(last, SMALL))) > 10


def video_input(path: Path) -> VideoInput:
    facts = probe_video(path, field="video_url", max_seconds=30, max_pixels=10**7)
    return VideoInput(
        path=path,
        width=facts.width,
        height=facts.height,
        fps=facts.fps,
        frame_count=facts.frame_count,
        duration_seconds=facts.duration_seconds,
    )


@pytest.mark.parametrize("source_fps", [24, 30])
def test_an_extension_holds_the_input_then_continues_from_its_last_frame(
    tmp_path: Path, source_fps: int
) -> None:
    source = write_video(tmp_path / "in.mp4", seconds=2, fps=source_fps)
    inputs = Inputs(video=video_input(source))
    frames = render(request("google/veo3-1-extend-video", seconds=1), inputs)
    assert len(frames) == 48 + 24
    for index in (0, 23, 47):  # output frame k shows the source at k / 24 s
        shown = int(index / 24 * source_fps + 1e-9)
        assert difference(frames[index], numbered_frame(shown, SMALL)) < 6
    seam = difference(frames[48], frames[47])
    assert seam < 8, "the new seconds start from the input's last frame"
    assert difference(frames[-1], frames[47]) > seam  # and then move on


def test_an_extension_encodes_to_input_plus_new_seconds_with_audio(tmp_path: Path) -> None:
    source = write_video(tmp_path / "in.mp4", seconds=1.5, size=(180, 320))
    req = request("google/veo3-1-extend-video", seconds=1, audio=True)
    facts = encoded(req, Inputs(video=video_input(source)), tmp_path)
    assert facts.frames == 36 + 24
    assert abs(facts.duration - 2.5) < 0.05 and abs(facts.audio_duration - 2.5) < 0.05


def test_probe_refuses_what_it_must(tmp_path: Path) -> None:
    def probe(path: Path, **limits) -> None:
        probe_video(path, field="video_url", **{"max_seconds": 30, "max_pixels": 10**7, **limits})

    good = write_video(tmp_path / "a.mp4", seconds=2)
    with pytest.raises(InvalidVideo, match=r"video_url is 2 s long; the limit is 1 s"):
        probe(good, max_seconds=1)
    with pytest.raises(InvalidVideo, match=r"320x180; the limit is 0\.01 megapixels"):
        probe(good, max_pixels=10_000)
    gif = tmp_path / "a.gif"
    picture((64, 64)).save(gif)
    with pytest.raises(InvalidVideo, match=r"not supported|cannot read"):
        probe(gif)
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40)
    with pytest.raises(InvalidVideo, match="video_url"):
        probe(noise)
    mjpeg = write_video(tmp_path / "b.mkv", codec="mjpeg", container="matroska", pix_fmt="yuvj420p")
    with pytest.raises(InvalidVideo, match="mjpeg codec, which is not supported"):
        probe(mjpeg)
    webm = write_video(tmp_path / "c.webm", codec="libvpx-vp9", container="webm")
    probe(webm)
