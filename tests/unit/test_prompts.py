"""Prompt enhancement: the built-in rules and the OpenAI-compatible enhancer."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reelforge.catalog.fields import MAX_PROMPT_CHARS
from reelforge.prompts import BuiltinEnhancer, LlmEnhancer, NoEnhancer, build_enhancer
from reelforge.settings import Settings

pytestmark = pytest.mark.unit
builtin = BuiltinEnhancer()


def test_adds_camera_light_and_motion_when_missing() -> None:
    prompt = "A red fox in a snowy forest"
    enhanced = builtin.enhance(prompt, image_input=False)
    assert enhanced.startswith("A red fox in a snowy forest. ")
    lowered = enhanced.lower()
    assert any(word in lowered for word in ("push-in", "tracking", "dolly", "drift"))
    assert "lighting" in lowered and "motion" in lowered


def test_is_deterministic() -> None:
    prompt = "A lighthouse on a cliff"
    assert builtin.enhance(prompt, image_input=False) == builtin.enhance(prompt, image_input=False)


def test_never_contradicts_the_prompt() -> None:
    static = builtin.enhance("A static shot of a quiet lake", image_input=False).lower()
    assert "push-in" not in static and "tracking" not in static and "drift" not in static
    mono = builtin.enhance("Black and white footage of a street", image_input=False).lower()
    assert "colours" not in mono.replace("tonal", "")
    night = builtin.enhance("A city at night", image_input=False).lower()
    assert "night lighting" in night and "natural lighting" not in night
    covered = "Close-up tracking shot, neon light, dancers spin"
    assert builtin.enhance(covered, image_input=False).startswith(covered)
    added = builtin.enhance(covered, image_input=False)[len(covered) :].lower()
    assert "shot" not in added and "lighting" not in added and "motion" not in added


def test_image_input_keeps_the_subject_in_frame() -> None:
    enhanced = builtin.enhance("Mona Lisa puts on glasses", image_input=True).lower()
    assert "subject" in enhanced


def test_long_prompts_are_left_alone() -> None:
    prompt = "word " * (MAX_PROMPT_CHARS // 5)
    assert builtin.enhance(prompt, image_input=False) == prompt


class _Chat(BaseHTTPRequestHandler):
    answer: object = None
    delay = 0.0
    seen: list[dict] = []  # noqa: RUF012

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).seen.append(
            {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "body": json.loads(self.rfile.read(length)),
            }
        )
        time.sleep(self.delay)
        body = json.dumps(self.answer).encode()
        self.send_response(200 if self.answer is not None else 500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def chat_server():
    _Chat.seen = []
    _Chat.delay = 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def reply(text: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


def test_llm_enhancer_uses_the_chat_endpoint(chat_server) -> None:
    _Chat.answer = reply('"A fox trots through fresh snow, slow tracking shot, soft dawn light."')
    enhancer = LlmEnhancer(chat_server, "tiny-model", key="sk-test")
    result = enhancer.enhance("a fox in snow", image_input=False)
    assert result == "A fox trots through fresh snow, slow tracking shot, soft dawn light."
    request = _Chat.seen[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "tiny-model"
    assert request["body"]["messages"][-1] == {"role": "user", "content": "a fox in snow"}


@pytest.mark.parametrize("answer", [None, reply(""), {"unexpected": True}, reply("x" * 5000)])
def test_llm_failures_fall_back_to_the_rules(chat_server, answer) -> None:
    _Chat.answer = answer
    result = LlmEnhancer(chat_server, "m").enhance("a fox in snow", image_input=False)
    assert result == builtin.enhance("a fox in snow", image_input=False)


def test_llm_timeout_falls_back(chat_server) -> None:
    _Chat.answer = reply("too late")
    _Chat.delay = 2.0
    started = time.monotonic()
    result = LlmEnhancer(chat_server, "m", timeout_seconds=0.5).enhance("a boat", image_input=False)
    assert result == builtin.enhance("a boat", image_input=False)
    assert time.monotonic() - started < 1.9


def test_build_enhancer_from_settings(tmp_path) -> None:
    home = {"home": tmp_path}
    assert isinstance(build_enhancer(Settings(**home)), BuiltinEnhancer)
    assert isinstance(build_enhancer(Settings(enhancer="off", **home)), NoEnhancer)
    llm = Settings(enhancer="llm", enhancer_url="http://127.0.0.1:9/v1", **home)
    assert isinstance(build_enhancer(llm), LlmEnhancer)
    with pytest.raises(ValueError, match="REELFORGE_ENHANCER_URL"):
        build_enhancer(Settings(enhancer="llm", **home))
