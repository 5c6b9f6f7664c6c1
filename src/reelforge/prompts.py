"""Prompt enhancement for local engines (``enhance_prompt``, true by default).

Veo enhances prompts upstream; local open models do better with prompts that spell out
camera, light and motion, so reelforge enhances for them:

* ``BuiltinEnhancer`` (default) adds what the prompt leaves unsaid, by rules: a camera
  move, lighting and a motion note. It only *adds* categories the prompt does not cover,
  never words that contradict it (no push-in on a "static shot", no colour on "black
  and white", no daylight at night), and it is deterministic: the same prompt always
  gives the same result.
* ``LlmEnhancer`` asks any OpenAI-compatible chat endpoint to rewrite the prompt, with a
  timeout, and falls back to the built-in rules on any failure.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Protocol

import httpx

from reelforge.catalog.fields import MAX_PROMPT_CHARS
from reelforge.settings import Settings

log = logging.getLogger(__name__)


class Enhancer(Protocol):
    def enhance(self, prompt: str, *, image_input: bool) -> str: ...


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(word)}", text) for word in words)


CAMERA_WORDS = (
    "camera", "shot", "zoom", "pan", "tilt", "dolly", "tracking", "close-up", "closeup",
    "aerial", "drone", "angle", "pov", "handheld", "orbit", "push in", "pull back", "lens",
)  # fmt: skip
STATIC_WORDS = ("static", "still", "locked-off", "tripod", "fixed camera")
LIGHT_WORDS = (
    "light", "lit", "lighting", "sun", "glow", "shadow", "neon", "lamp", "candle",
    "golden hour", "backlit", "illuminat", "bright", "dim",
)  # fmt: skip
NIGHT_WORDS = ("night", "midnight", "moon", "stars", "dark")
DUSK_WORDS = ("sunset", "sunrise", "dusk", "dawn", "twilight")
INDOOR_WORDS = ("room", "kitchen", "office", "studio", "indoors", "inside", "hall", "bar")
MONO_WORDS = ("black and white", "black-and-white", "monochrome", "greyscale", "grayscale")
MOTION_WORDS = (
    "slow motion", "slowly", "fast", "quickly", "rush", "run", "fly", "flies", "walk",
    "dance", "move", "moving", "motion", "spin", "fall", "drift", "sway", "flow",
)  # fmt: skip

CAMERA_CHOICES = (
    "slow cinematic push-in",
    "smooth tracking shot",
    "gentle handheld camera drift",
    "wide establishing shot with a slow dolly forward",
)
IMAGE_CAMERA_CHOICES = (
    "subtle camera movement that keeps the subject in frame",
    "slow cinematic push-in toward the subject",
)
STATIC_CAMERA = "steady locked-off camera"


def _pick(prompt: str, choices: tuple[str, ...]) -> str:
    digest = hashlib.sha256(prompt.encode()).digest()
    return choices[digest[0] % len(choices)]


class BuiltinEnhancer:
    """Deterministic, rule-based enhancement; never contradicts the prompt."""

    def enhance(self, prompt: str, *, image_input: bool) -> str:
        text = prompt.lower()
        additions: list[str] = []
        if not _has(text, CAMERA_WORDS):
            if _has(text, STATIC_WORDS):
                additions.append(STATIC_CAMERA)
            else:
                additions.append(
                    _pick(prompt, IMAGE_CAMERA_CHOICES if image_input else CAMERA_CHOICES)
                )
        if not _has(text, LIGHT_WORDS):
            additions.append(self._lighting(text))
        if not _has(text, MOTION_WORDS) and not _has(text, STATIC_WORDS):
            additions.append("natural, fluid motion")
        colour = "rich tonal contrast" if _has(text, MONO_WORDS) else "natural colours"
        additions.append(f"{colour}, sharp detail, cinematic quality")
        base = prompt.strip().rstrip(".")
        enhanced = f"{base}. {', '.join(additions).capitalize()}."
        return enhanced if len(enhanced) <= MAX_PROMPT_CHARS else prompt

    @staticmethod
    def _lighting(text: str) -> str:
        if _has(text, NIGHT_WORDS):
            return "moody low-key night lighting"
        if _has(text, DUSK_WORDS):
            return "warm low-angle light"
        if _has(text, INDOOR_WORDS):
            return "soft practical lighting"
        return "soft natural lighting"


SYSTEM_PROMPT = (
    "You rewrite prompts for a text-to-video model. Keep every subject, action, style and "
    "constraint of the user's prompt; never add content that contradicts it. Add concrete "
    "camera movement, lighting and motion detail where missing. Answer with the rewritten "
    "prompt only, in one paragraph under 120 words."
)


class LlmEnhancer:
    """Rewrites prompts with an OpenAI-compatible chat model; built-in rules on failure."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        key: str | None = None,
        timeout_seconds: float = 15.0,
        transport: httpx.BaseTransport | None = None,
        fallback: Enhancer | None = None,
    ) -> None:
        self._endpoint = url.rstrip("/") + "/chat/completions"
        self._model = model
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._timeout = timeout_seconds
        self._transport = transport
        self._fallback = fallback or BuiltinEnhancer()

    def enhance(self, prompt: str, *, image_input: bool) -> str:
        try:
            return self._ask(prompt, image_input=image_input)
        except Exception as error:  # any failure: the job goes on with the built-in rules
            log.warning("prompt enhancer failed; using built-in rules", extra={"error": str(error)})
            return self._fallback.enhance(prompt, image_input=image_input)

    def _ask(self, prompt: str, *, image_input: bool) -> str:
        hint = " The video starts from a given image." if image_input else ""
        body = {
            "model": self._model,
            "temperature": 0.2,
            "max_tokens": 400,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT + hint},
                {"role": "user", "content": prompt},
            ],
        }
        with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
            response = client.post(self._endpoint, json=body, headers=self._headers)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        rewritten = str(content).strip().strip('"').strip()
        if not rewritten or len(rewritten) > MAX_PROMPT_CHARS:
            raise ValueError("the enhancer answered with an empty or too long prompt")
        return rewritten


class NoEnhancer:
    def enhance(self, prompt: str, *, image_input: bool) -> str:
        return prompt


def build_enhancer(settings: Settings) -> Enhancer:
    if settings.enhancer == "off":
        return NoEnhancer()
    if settings.enhancer == "llm":
        if not settings.enhancer_url:
            raise ValueError("REELFORGE_ENHANCER=llm needs REELFORGE_ENHANCER_URL")
        key = settings.enhancer_key.get_secret_value() if settings.enhancer_key else None
        return LlmEnhancer(
            settings.enhancer_url,
            settings.enhancer_model,
            key=key,
            timeout_seconds=settings.enhancer_timeout_seconds,
        )
    return BuiltinEnhancer()
