"""redact_url: credentials in user info and in key=value parameters never reach a log."""

from __future__ import annotations

import pytest

from har_daemon.core.redact import MASK, is_secret_name, redact_pairs, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://u:pw@cam:554/s?x=1", "rtsp://u:***@cam:554/s?x=1"),
        ("rtsp://user:p@ss@cam/", "rtsp://user:***@cam/"),  # the last '@' ends the user info
        ("rtsp://user:a:b@cam/", "rtsp://user:***@cam/"),  # the first ':' ends the user name
        ("rtsp://:pw@cam/", "rtsp://:***@cam/"),
        ("rtsp://user:@cam/", "rtsp://user:***@cam/"),
        ("rtsp://user:p%40ss@cam/", "rtsp://user:***@cam/"),
        ("rtsp://viewer@cam/", "rtsp://viewer@cam/"),  # a user name alone is no secret
        ("RTSP://u:pw@cam", "RTSP://u:***@cam"),
        ("rtsp://u:pw@cam?password=x", "rtsp://u:***@cam?password=***"),
        ("rtsp://u:pw@cam#frag", "rtsp://u:***@cam#frag"),
    ],
)
def test_user_info_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "rtsp://cam/stream?user=admin&password=secret",
            "rtsp://cam/stream?user=admin&password=***",
        ),
        (
            "rtsp://cam:554/cam/realmonitor?channel=1&subtype=0&PASSWORD=s3&pwd=x&token=t",
            "rtsp://cam:554/cam/realmonitor?channel=1&subtype=0&PASSWORD=***&pwd=***&token=***",
        ),
        (
            "http://cam/snap.cgi?pass=1&Passwd=2&key=3",
            "http://cam/snap.cgi?pass=***&Passwd=***&key=***",
        ),
        (
            "http://cam/x?apikey=a&api_key=b&apiKey=c",
            "http://cam/x?apikey=***&api_key=***&apiKey=***",
        ),
        (
            "http://cam/x?auth=a&secret=b&signature=c",
            "http://cam/x?auth=***&secret=***&signature=***",
        ),
        ("http://cam/x?sig=a&X-Amz-Signature=b", "http://cam/x?sig=***&X-Amz-Signature=***"),
        (
            "http://cam/x?access_token=a&client_secret=b",
            "http://cam/x?access_token=***&client_secret=***",
        ),
        # Repeated keys: every occurrence.
        ("rtsp://cam/s?password=a&password=b", "rtsp://cam/s?password=***&password=***"),
        # ';' separates parameters as well as '&'.
        ("rtsp://cam/s?user=a;password=b;ch=1", "rtsp://cam/s?user=a;password=***;ch=1"),
        # Percent-encoded names are decoded before matching; the name is kept as written.
        ("rtsp://cam/s?pass%77ord=x&ch=1", "rtsp://cam/s?pass%77ord=***&ch=1"),
        # A value holding '=' (base64) is masked whole; percent-encoding in it does not matter.
        ("rtsp://cam/s?token=YWJj==&ch=1", "rtsp://cam/s?token=***&ch=1"),
        ("rtsp://cam/s?password=a%26b&ch=1", "rtsp://cam/s?password=***&ch=1"),
        # Empty values and bare flags stay: nothing to hide.
        ("rtsp://cam/s?password=&flag&ch=1", "rtsp://cam/s?password=&flag&ch=1"),
        # Names that only contain a secret word are not secret.
        ("rtsp://cam/s?keyframe=1&bypass=2&author=3", "rtsp://cam/s?keyframe=1&bypass=2&author=3"),
        # XMEye cameras carry the pairs in the path.
        (
            "rtsp://cam:554/user=admin&password=tlJw&channel=1&stream=0.sdp?",
            "rtsp://cam:554/user=admin&password=***&channel=1&stream=0.sdp?",
        ),
        # ... and OAuth-style links in the fragment.
        ("https://cam/live#access_token=abc&x=1", "https://cam/live#access_token=***&x=1"),
    ],
)
def test_secret_parameters(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://u:pw@[fe80::1%25eth0]:554/s", "rtsp://u:***@[fe80::1%25eth0]:554/s"),
        ("rtsp://[::1]:554/s?password=x", "rtsp://[::1]:554/s?password=***"),
        ("rtsp://u:pw@[::1]/s?pwd=x", "rtsp://u:***@[::1]/s?pwd=***"),
    ],
)
def test_ipv6_hosts(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # urllib refuses these (unclosed bracket, bad port); they are still redacted.
        ("rtsp://u:pw@[::1/s?password=x", "rtsp://u:***@[::1/s?password=***"),
        ("rtsp://u:pw@cam:notaport/s", "rtsp://u:***@cam:notaport/s"),
        ("rtsp://u:pw@", "rtsp://u:***@"),
        ("rtsp://", "rtsp://"),
        ("rtsp://?password=x", "rtsp://?password=***"),
        ("  rtsp://u:pw@cam/", "  rtsp://u:***@cam/"),
        ("rtsp://u:pw@cam/a b?password=c d", "rtsp://u:***@cam/a b?password=***"),
    ],
)
def test_malformed_urls_are_redacted_too(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/dev/video0",
        "clips/front door.mp4",
        "/videos/a?password=x.mp4",  # a file name, not a URL: no parameters
        "user:pw@cam",  # no scheme
        "1rtsp://u:pw@cam",  # not a scheme
        "rtsp://cam:554/stream1",
        "rtsp://cam/s?channel=1&subtype=0",
    ],
)
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact_url(text) == text


def test_no_secret_survives() -> None:
    url = "rtsps://adm:S3cr%3At@[2001:db8::7]:322/p/user=x&pwd=S3cr?token=S3cr;sig=S3cr#key=S3cr"
    redacted = redact_url(url)
    assert "S3cr" not in redacted and redacted.count(MASK) == 5


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("PassWord", True),
        ("camera_password", True),
        ("x-api-key", True),
        ("apiKey", True),
        ("AccessToken", True),
        ("pass%77ord", True),
        (" pwd ", True),
        ("user", False),
        ("username", False),
        ("channel", False),
        ("passthrough", False),
        ("monkey", False),
        ("", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_redact_pairs_keeps_separators_and_order() -> None:
    assert redact_pairs("a=1;pwd=2&b&c=3") == "a=1;pwd=***&b&c=3"
    assert redact_pairs("") == ""


def test_urls_inside_text_are_redacted_and_the_rest_kept() -> None:
    text = (
        "Connection to tcp://cam:554?timeout=0 failed; opening 'rtsp://u:pw1@cam/s?password=pw2' "
        "and http://nvr/api?token=pw3 (retrying)"
    )
    assert redact_text(text) == (
        "Connection to tcp://cam:554?timeout=0 failed; opening 'rtsp://u:***@cam/s?password=***' "
        "and http://nvr/api?token=*** (retrying)"
    )
    assert redact_text("no url here: a=1&password=2") == "no url here: a=1&password=2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # The fragment starts at the first '#': a second one is part of it, kept as written.
        ("rtsp://cam/s?password=pw#a#b", "rtsp://cam/s?password=***#a#b"),
        # Every path segment is its own list of pairs: a pair after a plain one is still seen.
        ("rtsp://cam/a=1/password=pw", "rtsp://cam/a=1/password=***"),
    ],
)
def test_where_each_part_of_the_url_begins(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize("name", ["P-W-D", "to_ken", "Se.Cret"])
def test_a_secret_word_spelt_with_separators_is_still_secret(name: str) -> None:
    """The whole name without its separators is checked too, not only each word of it."""
    assert is_secret_name(name)
