"""Local fakes of remote APIs, speaking their real protocols over loopback HTTP."""

from fakes.aimlapi import FakeAimlApi, Fault, RecordedRequest, sample_mp4

__all__ = ["FakeAimlApi", "Fault", "RecordedRequest", "sample_mp4"]
