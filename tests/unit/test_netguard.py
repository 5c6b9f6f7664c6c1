"""Address policy: every non-public address class, every host spelling, allow-list overrides."""

from __future__ import annotations

import time

import pytest

from reelforge.errors import InvalidRequest
from reelforge.media.netguard import (
    FetchPolicy,
    check_url,
    is_forbidden,
    parse_ip_literal,
    parse_target,
    redact_url,
    resolve_host,
)
from reelforge.settings import Settings

pytestmark = pytest.mark.unit


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver must not be called for {host}")


def mapping(table: dict[str, list[str]]):
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]

    resolver.calls = calls  # type: ignore[attr-defined]
    return resolver


FORBIDDEN = [
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "100.64.0.1",  # CGNAT
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "198.18.0.1",  # benchmarking
    "198.19.255.255",
    "192.0.2.1",  # documentation
    "198.51.100.1",
    "203.0.113.1",
    "192.0.0.8",
    "::1",
    "::",
    "fc00::1",  # unique local
    "fd12:3456::1",
    "fe80::1",  # link-local
    "fe80::1%eth0",
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "ff0e::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:7f00:1",
    "::127.0.0.1",  # IPv4-compatible
    "::8.8.8.8",
    "64:ff9b::127.0.0.1",  # NAT64 with a forbidden v4 inside
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:2::1",  # benchmarking
    "2001:db8::1",  # documentation
    "100::1",  # discard
    "5f00::1",  # outside global unicast
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
]


@pytest.mark.parametrize("ip", FORBIDDEN)
def test_forbidden_addresses(ip: str) -> None:
    assert is_forbidden(ip)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses(ip: str) -> None:
    assert not is_forbidden(ip)


@pytest.mark.parametrize("ip", FORBIDDEN)
def test_literal_urls_refused_without_dns(ip: str) -> None:
    host = f"[{ip.replace('%', '%25')}]" if ":" in ip else ip
    with pytest.raises(InvalidRequest) as info:
        check_url(f"http://{host}/x.png", FetchPolicy(resolver=no_dns), field="image_url")
    assert info.value.field == "image_url"
    assert "not a public internet address" in info.value.message


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7F.0x0.0x0.0x1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("2852039166", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
    ],
)
def test_ip_spellings_parse_to_the_address(spelling: str, address: str) -> None:
    parsed = parse_ip_literal(spelling)
    assert parsed is not None
    assert str(parsed) == str(parse_ip_literal(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://127.1/",
        "http://127.0.1:8080/",
        "http://127.0.0.1./",
        "http://0/",
        "http://0.0.0.0:80/",
        "http://[::1]/",
        "http://[::1]:8000/image.png",
        "http://[0:0:0:0:0:0:0:1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "http://2852039166/",
        "HTTP://127.0.0.1/",
        "http://127。0。0。1/",  # ideographic full stops, normalised by IDNA
        "http://[fe80::1%25eth0]/",
    ],
)
def test_spellings_of_internal_addresses_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        check_url(url, FetchPolicy(resolver=no_dns), field="image_url")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://localhost./",
        "http://LOCALHOST/",
        "http://LocalHost.:8080/x",
        "http://api.localhost/",
    ],
)
def test_localhost_names_refused_without_dns(url: str) -> None:
    with pytest.raises(InvalidRequest, match="local name"):
        check_url(url, FetchPolicy(resolver=no_dns))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://good.com@127.0.0.1/", "user name or password"),
        ("http://user:pass@example.com/", "user name or password"),
        ("http://127.0.0.1\\@good.com/", "user name or password"),
        ("http://%31%32%37.0.0.1/", "invalid host"),
        ("http://ex%41mple.com/", "invalid host"),
        ("http://1.2.3.4.5/", "invalid host"),
        ("http://256.1.1.1/", "not a valid URL"),
        ("http://example.com:0/", "invalid port"),
        ("http:///path", "no host"),
        ("//example.com/a.png", "absolute http or https URL"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_tricky_urls_refused(url: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        check_url(url, FetchPolicy(resolver=no_dns))


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "javascript", "dict", "ws"])
def test_only_http_and_https(scheme: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_url(f"{scheme}://example.com/a.png", FetchPolicy(resolver=no_dns), field="x")
    assert f"'{scheme}'" in info.value.message
    assert info.value.field == "x"


def test_names_are_judged_by_what_they_resolve_to() -> None:
    resolver = mapping(
        {
            "evil.example": ["127.0.0.1"],
            "mixed.example": ["93.184.216.34", "10.0.0.7"],
            "metadata.example": ["169.254.169.254"],
            "v6.example": ["::ffff:192.168.0.1"],
            "good.example": ["93.184.216.34", "2606:2800:220:1::1"],
            "upper.example.": ["127.0.0.1"],
        }
    )
    policy = FetchPolicy(resolver=resolver)
    for url in (
        "http://evil.example/a.png",
        "https://mixed.example/a.png",
        "http://METADATA.example/",
        "http://v6.example:8080/",
        "http://UPPER.example./",
    ):
        with pytest.raises(InvalidRequest, match="resolves to a non-public address"):
            check_url(url, policy)
    check_url("https://good.example/a.png?sig=1", policy)


def test_message_does_not_leak_resolved_address() -> None:
    policy = FetchPolicy(resolver=mapping({"db.example": ["10.20.30.40"]}))
    with pytest.raises(InvalidRequest) as info:
        check_url("http://db.example/", policy)
    assert "10.20.30.40" not in info.value.message


def test_unresolvable_name_is_left_to_the_worker() -> None:
    check_url("https://nothing.example/a.png", FetchPolicy(resolver=mapping({})))


def test_slow_resolution_is_left_to_the_worker() -> None:
    def slow(host: str, port: int) -> list[str]:
        time.sleep(2)
        return ["127.0.0.1"]

    started = time.monotonic()
    check_url("https://slow.example/", FetchPolicy(resolver=slow), resolve_timeout=0.2)
    assert time.monotonic() - started < 1.0


def test_resolve_false_skips_dns() -> None:
    check_url("https://anything.example/", FetchPolicy(resolver=no_dns), resolve=False)


def test_resolver_gets_host_and_port() -> None:
    seen: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["93.184.216.34"]

    check_url("https://img.example/a", FetchPolicy(resolver=resolver))
    check_url("http://img.example:8080/a", FetchPolicy(resolver=resolver))
    assert seen == [("img.example", 443), ("img.example", 8080)]


def test_allow_cidr_overrides_literal_and_resolved() -> None:
    policy = FetchPolicy(
        allow=("10.0.0.0/8", "127.0.0.1"), resolver=mapping({"files.corp": ["10.1.2.3"]})
    )
    check_url("http://10.9.9.9/a.png", policy)
    check_url("http://127.0.0.1:9000/a.png", policy)
    check_url("http://[::ffff:127.0.0.1]/a.png", policy)
    check_url("http://files.corp/a.png", policy)
    assert not is_forbidden("10.1.1.1", policy)
    assert is_forbidden("192.168.1.1", policy)
    with pytest.raises(InvalidRequest):
        check_url("http://127.0.0.2/a.png", policy)


def test_allow_ipv6_cidr() -> None:
    policy = FetchPolicy(allow=("fd00::/8",), resolver=no_dns)
    check_url("http://[fd00::5]/", policy)
    with pytest.raises(InvalidRequest):
        check_url("http://[fc00::5]/", policy)


def test_allow_host_name_overrides_resolution() -> None:
    resolver = mapping({"images.corp": ["192.168.5.5"], "other.corp": ["192.168.5.6"]})
    policy = FetchPolicy(allow=("Images.Corp.",), resolver=resolver)
    check_url("http://images.corp/a.png", policy)
    check_url("http://IMAGES.CORP./a.png", policy)
    assert resolver.calls == []  # allowed names need no lookup
    with pytest.raises(InvalidRequest):
        check_url("http://other.corp/a.png", policy)


def test_allow_wildcard_host() -> None:
    resolver = mapping({"a.corp": ["10.0.0.1"], "b.x.corp": ["10.0.0.2"], "corp": ["10.0.0.3"]})
    policy = FetchPolicy(allow=("*.corp",), resolver=resolver)
    check_url("http://a.corp/", policy)
    check_url("http://b.x.corp/", policy)
    with pytest.raises(InvalidRequest):
        check_url("http://corp/", policy)


def test_allowed_host_name_can_be_localhost() -> None:
    check_url("http://localhost:9000/x", FetchPolicy(allow=("localhost",), resolver=no_dns))


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "*.", "http://x/"])
def test_bad_allow_entries_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="allow entry"):
        FetchPolicy(allow=(entry,))


def test_from_settings() -> None:
    settings = Settings(
        fetch_allow="10.0.0.0/8, images.corp",
        fetch_timeout_seconds=7.5,
        max_image_bytes=1234,
    )
    policy = FetchPolicy.from_settings(settings)
    assert policy.allow == ("10.0.0.0/8", "images.corp")
    assert policy.timeout_seconds == 7.5
    assert policy.max_bytes == 1234
    assert policy.max_redirects == 3
    assert policy.allows_host("images.corp")


def test_defaults() -> None:
    policy = FetchPolicy()
    assert policy.allow == ()
    assert policy.timeout_seconds == 20.0
    assert policy.max_bytes == 20 * 2**20
    assert policy.max_redirects == 3


def test_is_forbidden_rejects_non_addresses() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        is_forbidden("example.com")


def test_parse_target_keeps_what_the_client_uses() -> None:
    target = parse_target("HTTPS://Example.COM/a.png?x=1#frag")
    assert (target.host, target.port, target.ip) == ("example.com", 443, None)
    assert parse_target("http://[::1]:8080/").host == "::1"
    assert parse_target("http://xn--bcher-kva.example/").host == "xn--bcher-kva.example"
    assert parse_target("http://bücher.example/").host == "xn--bcher-kva.example"


def test_resolve_host_dedupes_and_validates() -> None:
    policy = FetchPolicy(resolver=lambda h, p: ["1.1.1.1", "1.1.1.1", "junk", "fe80::1%eth0"])
    addresses = resolve_host("x.example", 80, policy, timeout=1)
    assert [str(a) for a in addresses] == ["1.1.1.1", "fe80::1"]


def test_redact_url_strips_query_and_fragment() -> None:
    assert redact_url("https://a.example:8443/p/i.png?token=secret#x") == (
        "https://a.example:8443/p/i.png"
    )
    assert "secret" not in redact_url("http://[::1]/x?secret")
