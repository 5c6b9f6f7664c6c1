"""Signed video URLs: what verifies, what does not, and where the key comes from."""

from __future__ import annotations

import pytest

from reelforge.errors import ConfigurationError, Forbidden
from reelforge.settings import Settings
from reelforge.storage.signing import UrlSigner, load_signer

pytestmark = pytest.mark.unit

PATH = "/files/videos/tok/output.mp4"


def params(query: str) -> tuple[str, str]:
    values = dict(part.split("=", 1) for part in query.split("&"))
    return values["expires"], values["signature"]


def test_a_signed_url_verifies_until_it_expires() -> None:
    now = [1_000_000.0]
    signer = UrlSigner(b"k" * 32, ttl_seconds=60, clock=lambda: now[0])
    expires, signature = params(signer.sign(PATH))
    assert expires == "1000060"
    assert signer.verify(PATH, expires, signature) == 60
    now[0] += 59
    assert signer.verify(PATH, expires, signature) == 1
    now[0] += 1
    with pytest.raises(Forbidden, match="expired at 1970-01-12T13:47:40Z; GET the generation"):
        signer.verify(PATH, expires, signature)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda path, e, s: (path.replace("tok", "tok2"), e, s), "not valid"),
        (lambda path, e, s: (path, str(int(e) + 3600), s), "not valid"),
        (lambda path, e, s: (path, e, s[:-1] + ("A" if s[-1] != "A" else "B")), "not valid"),
        (lambda path, e, s: (path, "12x", s), "not valid"),
        (lambda path, e, s: (path, None, s), "not signed"),
        (lambda path, e, s: (path, e, None), "not signed"),
    ],
)
def test_tampered_urls_are_forbidden(change, words: str) -> None:
    signer = UrlSigner(b"k" * 32, ttl_seconds=60)
    path, expires, signature = change(PATH, *params(signer.sign(PATH)))
    with pytest.raises(Forbidden, match=words):
        signer.verify(path, expires, signature)


def test_another_key_does_not_verify() -> None:
    expires, signature = params(UrlSigner(b"a" * 32, 60).sign(PATH))
    with pytest.raises(Forbidden):
        UrlSigner(b"b" * 32, 60).verify(PATH, expires, signature)


def test_the_configured_key_wins_else_the_stored_one(tmp_path) -> None:
    asked: list[str] = []

    def stored() -> str:
        asked.append("stored")
        return "k" * 43

    configured = Settings(home=tmp_path, url_signing_key="s" * 40, _env_file=None)
    signer = load_signer(configured, stored)
    assert signer is not None and asked == []
    from_store = load_signer(Settings(home=tmp_path, _env_file=None), stored)
    again = load_signer(Settings(home=tmp_path, _env_file=None), stored)
    assert from_store is not None and again is not None and asked == ["stored", "stored"]
    assert again.verify(PATH, *params(from_store.sign(PATH))) > 0
    with pytest.raises(Forbidden):
        from_store.verify(PATH, *params(signer.sign(PATH)))
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_signer(Settings(home=tmp_path, url_signing_key="short", _env_file=None), stored)
    unsigned = Settings(home=tmp_path, video_url_ttl=0, _env_file=None)
    assert load_signer(unsigned, stored) is None
