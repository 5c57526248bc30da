"""`X-Retell-Signature` checked exactly as retell-sdk's `verify` does, differentially.

retell-sdk (`retell.lib.webhook_auth`) is the reference: every signature its signer makes is
accepted, everything its verifier refuses is refused, over bodies, keys and clocks drawn by
hypothesis.
"""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st
from retell.lib import verify
from retell.lib.webhook_auth import symmetric

from vapi_calendar.support.signing import (
    RETELL_TOLERANCE_MS,
    retell_signature,
    retell_signature_valid,
)

NOW_MS = 1_796_000_000_000
bodies = st.text(max_size=300)
keys = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


@given(body=bodies, key=keys, skew=st.integers(-RETELL_TOLERANCE_MS, RETELL_TOLERANCE_MS))
def test_what_retells_signer_makes_is_accepted(body: str, key: str, skew: int) -> None:
    header = symmetric["sign"](body, key, NOW_MS + skew)
    assert retell_signature_valid(body.encode(), key, header, NOW_MS)
    assert retell_signature(body.encode(), key, NOW_MS + skew) == header


@settings(max_examples=200)
@given(
    body=bodies,
    key=keys,
    other=keys,
    skew=st.integers(-3 * RETELL_TOLERANCE_MS, 3 * RETELL_TOLERANCE_MS),
    mangle=st.sampled_from(["none", "key", "body", "digest", "prefix"]),
)
def test_agrees_with_retells_verify(
    body: str, key: str, other: str, skew: int, mangle: str
) -> None:
    """Whatever is presented, both decide alike (retell's verify reads the real clock, so the
    comparison runs at the real time)."""
    now_ms = int(time.time() * 1000)
    signing_key = other if mangle == "key" else key
    header = symmetric["sign"](body, signing_key, now_ms + skew)
    sent = body + "x" if mangle == "body" else body
    if mangle == "digest":
        header = header[:-1] + ("0" if header[-1] != "0" else "1")
    if mangle == "prefix":
        header = header.replace("v=", "t=")
    ours = retell_signature_valid(sent.encode(), key, header, int(time.time() * 1000))
    assert ours == verify(sent, key, header)


def test_the_window_is_five_minutes_either_way() -> None:
    body = b'{"args":{}}'
    for skew, valid in ((RETELL_TOLERANCE_MS, True), (RETELL_TOLERANCE_MS + 1, False)):
        for sign in (1, -1):
            header = retell_signature(body, "key", NOW_MS + sign * skew)
            assert retell_signature_valid(body, "key", header, NOW_MS) is valid


def test_malformed_headers_are_refused() -> None:
    body = b"{}"
    good = retell_signature(body, "key", NOW_MS)
    for header in (
        "",
        "v=,d=",
        good.upper(),
        good + ",",
        good.replace(",", ";"),
        "d=" + good[-64:],
    ):
        assert not retell_signature_valid(body, "key", header, NOW_MS)


def test_the_raw_bytes_are_what_is_signed() -> None:
    """Re-serialising the JSON would change the bytes; only the body as received verifies."""
    raw = b'{"args": {"startDateTime": "2031-03-11T09:00:00"}}'
    header = retell_signature(raw, "key", NOW_MS)
    assert retell_signature_valid(raw, "key", header, NOW_MS)
    assert not retell_signature_valid(raw.replace(b": ", b":"), "key", header, NOW_MS)
