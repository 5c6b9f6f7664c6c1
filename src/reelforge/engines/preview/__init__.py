"""The built-in ``preview`` engine: deterministic procedural video on the CPU, no weights."""

from reelforge.engines.preview.engine import PreviewEngine

__all__ = ["PreviewEngine"]
