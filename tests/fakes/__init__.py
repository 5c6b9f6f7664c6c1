"""Local fakes of remote APIs, speaking their real protocols over loopback HTTP."""

from fakes._loopback import Fault, RecordedRequest, sample_mp4
from fakes.aimlapi import FakeAimlApi

__all__ = ["FakeAimlApi", "Fault", "RecordedRequest", "sample_mp4"]
