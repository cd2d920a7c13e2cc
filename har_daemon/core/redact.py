"""Hide credentials in URLs before they reach a log line, an error message or a config dump.

Cameras carry credentials in two places: the URL's user info (`rtsp://user:pw@cam/`) and
`key=value` parameters (`rtsp://cam/stream?user=admin&password=pw`, as Reolink, Dahua and many
NVRs take them; XMEye cameras put the same pairs in the path: `rtsp://cam/user=a&password=b`).
`redact_url` masks the password of the user info and the value of every secret parameter with
`MASK`, and keeps everything else as written, so a log still says which camera and stream.

Which parameter names are secret (`is_secret_name`): the name is percent-decoded, split into
words at `_`, `-`, `.`, spaces and camelCase humps, and is secret when one word, or the whole
name written without separators, is in `SECRET_WORDS` (so `password`, `PWD`, `api_key`,
`apiKey`, `X-Amz-Signature`, `access_token`, `client_secret` are all caught). Masking one
harmless parameter too many costs less than logging one password.

Where parameters are looked for: the query, the fragment and every path segment, each split
at `&` and `;` (both are used as separators in the field). The authority ends at the first `/`,
`?` or `#` and the user info at its last `@`, as in RFC 3986, urllib and FFmpeg, so what is
masked is what the stream reader will send. The function never raises: a malformed URL (an
unclosed IPv6 bracket, a bad port) is redacted by the same rules, not passed through.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pass", "pwd", "passphrase",
        "token", "secret", "key", "apikey", "auth",
        "signature", "sig", "credential", "credentials",
    }
)  # fmt: skip
"""Words that make a parameter name secret (see the module docstring for the matching)."""

_URL = re.compile(r"(?P<scheme>\s*[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)", re.DOTALL)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_AUTHORITY_END = re.compile(r"[/?#]")
_PAIR_SEPARATOR = re.compile(r"([&;])")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SEPARATOR = re.compile(r"[^a-z0-9]+")


def is_secret_name(name: str) -> bool:
    """True when a parameter or field called `name` holds a secret (see `SECRET_WORDS`)."""
    decoded = _CAMEL_HUMP.sub("_", unquote(name).strip())
    words = [w for w in _WORD_SEPARATOR.split(decoded.lower()) if w]
    return "".join(words) in SECRET_WORDS or any(w in SECRET_WORDS for w in words)


def redact_pairs(text: str) -> str:
    """Mask the values of secret `key=value` pairs in `&`/`;`-separated `text`."""
    parts = _PAIR_SEPARATOR.split(text)  # separators kept at odd indices
    for i in range(0, len(parts), 2):
        key, eq, value = parts[i].partition("=")
        if eq and value and is_secret_name(key):
            parts[i] = f"{key}={MASK}"
    return "".join(parts)


def _redact_userinfo(authority: str) -> str:
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return authority
    user = userinfo.split(":", 1)[0]
    return f"{user}:{MASK}@{host}"


def redact_url(source: str) -> str:
    """`source` with its credentials masked; text not starting with `scheme://` comes back as is.

    `rtsp://user:pw@cam/s?channel=1&password=pw` -> `rtsp://user:***@cam/s?channel=1&password=***`
    """
    url = _URL.fullmatch(source)
    if url is None:
        return source
    rest = url["rest"]
    end = _AUTHORITY_END.search(rest)
    cut = end.start() if end else len(rest)
    authority, tail = rest[:cut], rest[cut:]
    tail, hash_, fragment = tail.partition("#")
    path, question, query = tail.partition("?")
    path = "/".join(redact_pairs(segment) for segment in path.split("/"))
    return "".join(
        (
            url["scheme"],
            _redact_userinfo(authority),
            path,
            question,
            redact_pairs(query),
            hash_,
            redact_pairs(fragment),
        )
    )


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (`redact_url`): for lines written by others, such
    as FFmpeg's, which quote the URL they were given."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
