"""What the ``aimlapi`` engine sends for each published model: its published fields.

The create body is built from the model's catalogue declaration, so every model is
forwarded with exactly the fields its spec publishes, in its own spelling (``720P`` for
Veo 3, ``720p`` for Veo 3.1). Values the worker resolved come from the
``GenerationRequest`` (the user's prompt before any local enhancement, the job's seed,
``aspect_ratio`` with ``auto`` decided from the input); the rest (``auto_fix``,
``provider``, ``person_generation``) as validated. Inputs leave as data URIs made from
what reelforge fetched and vetted, never as the user's URLs: images re-encoded as JPEG,
a video as its bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from reelforge.catalog import MODELS
from reelforge.engines.base import INPUT_KINDS, Capabilities, GenerationRequest, Inputs
from reelforge.engines.upstream import image_data_uri
from reelforge.errors import EngineError
from reelforge.media.videos import video_mime

CAPABILITIES = Capabilities(inputs=frozenset(INPUT_KINDS), enhances_prompt=True)
"""The AI/ML API serves every published model with all of its inputs."""


def request_body(request: GenerationRequest, inputs: Inputs) -> dict[str, Any]:
    """The create body for ``request.model`` with its published field names."""
    spec = MODELS.get(request.model)
    if spec is None:
        raise EngineError(f"the aimlapi engine does not know the model '{request.model}'")
    resolved: dict[str, Any] = {
        "prompt": request.original_prompt or request.prompt,
        "duration": request.duration_seconds,
        "aspect_ratio": request.aspect_ratio,
        "seed": request.seed,
        "enhance_prompt": request.enhance_prompt,
        "negative_prompt": request.negative_prompt or None,
        "generate_audio": request.generate_audio,
    }
    body: dict[str, Any] = {"model": request.model}
    for field in spec.declared:
        name = field.name
        if field.role is not None:
            value = _input(field.role, inputs)
        elif name in resolved:
            value = resolved[name]
        elif name == "resolution":
            value = request.params.get(name) or _spelt_like(field.default, request.resolution)
        else:
            value = request.params.get(name)
        if value is not None:
            body[name] = value
    return body


def _input(role: str, inputs: Inputs) -> Any:
    if role == "image":
        return image_data_uri(inputs.image) if inputs.image is not None else None
    if role == "last_frame":
        return image_data_uri(inputs.last_frame) if inputs.last_frame is not None else None
    if role == "references":
        return [image_data_uri(image) for image in inputs.references] or None
    if inputs.video is None:
        return None
    data = base64.b64encode(inputs.video.path.read_bytes()).decode("ascii")
    return f"data:{video_mime(inputs.video.path)};base64,{data}"


def _spelt_like(default: object, resolution: str) -> str:
    """``resolution`` in the case the model publishes (its default's)."""
    if isinstance(default, str) and default == default.lower():
        return resolution.lower()
    return resolution.upper()
