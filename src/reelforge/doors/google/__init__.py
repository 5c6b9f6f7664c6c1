"""Google's own Veo API as a front door: Vertex AI (google-genai 3.x) and the Gemini API.

``router`` serves both forms on the same jobs as every other door; ``errors`` gives
Google's error shape; ``translate`` maps Google's model ids and parameters to the
catalogue's; ``videos`` holds the use cases and the ids.
"""

from reelforge.doors.google.errors import error_body, is_google_path
from reelforge.doors.google.router import PREDICT_SUFFIX, router
from reelforge.doors.google.videos import GoogleVideos

__all__ = ["PREDICT_SUFFIX", "GoogleVideos", "error_body", "is_google_path", "router"]
