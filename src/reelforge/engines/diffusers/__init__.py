"""Open-weight video models (Wan 2.1/2.2, LTX-Video) through Hugging Face diffusers.

Needs the ``reelforge[diffusers]`` extra; importing this package does not: torch,
diffusers and transformers are imported when the first job runs, and a missing extra
fails the engine's ``load`` with the install command.
"""

from reelforge.engines.diffusers.engine import DiffusersEngine

__all__ = ["DiffusersEngine"]
