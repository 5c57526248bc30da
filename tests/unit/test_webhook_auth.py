"""Webhook authentication: shared secret, Vapi's default HMAC plan, and both together."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from starlette.datastructures import Headers

from vapi_calendar.server.vapi.auth import (
    BearerPlan,
    HmacPlan,
    WebhookAuthenticator,
    WebhookAuthError,
)

NOW = 1_900_000_000.0  # fixed clock: 2030-03-17T17:46:40Z
SECRET = "vapi-shared-secret-123"
HMAC_KEY = "whsec_test_key"
BODY = b'{"message":{"type":"tool-calls"}}'


def authenticator(
    secret: str | None = None, hmac_secret: str | None = None, tolerance: float = 300
) -> WebhookAuthenticator:
    return WebhookAuthenticator(
        bearer=BearerPlan(secret) if secret is not None else None,
        hmac=HmacPlan(hmac_secret) if hmac_secret else None,
        tolerance_seconds=tolerance,
        clock=lambda: NOW,
    )


def sign(timestamp: str, body: bytes = BODY, key: str = HMAC_KEY) -> str:
    return hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(timestamp: str, body: bytes = BODY, prefix: str = "") -> dict[str, str]:
    return {"x-timestamp": timestamp, "x-signature": prefix + sign(timestamp, body)}


def reason(auth: WebhookAuthenticator, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(WebhookAuthError) as caught:
        auth.verify(headers, body)
    return str(caught.value)


# --- shared secret -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Vapi-Secret": SECRET},
        {"x-vapi-secret": SECRET},
        {"Authorization": f"Bearer {SECRET}"},
        {"authorization": f"bearer {SECRET}"},
        {"AUTHORIZATION": f"Bearer   {SECRET}  "},
    ],
)
def test_secret_accepted_in_either_header(headers: dict[str, str]) -> None:
    assert authenticator(secret=SECRET).verify(headers, BODY) == "secret"


def test_secret_from_starlette_headers() -> None:
    headers = Headers(raw=[(b"x-vapi-secret", SECRET.encode()), (b"content-type", b"json")])
    assert authenticator(secret=SECRET).verify(headers, BODY) == "secret"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Vapi-Secret": "wrong"},
        {"X-Vapi-Secret": SECRET + "x"},
        {"X-Vapi-Secret": SECRET[:-1]},
        {"Authorization": "Bearer wrong"},
        {"X-Vapi-Secret": "wrong", "Authorization": "Bearer also-wrong"},
    ],
)
def test_wrong_secret(headers: dict[str, str]) -> None:
    assert reason(authenticator(secret=SECRET), headers) == "invalid secret"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Vapi-Secret": ""},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {SECRET}"},  # right value, wrong scheme
        {"Authorization": SECRET},  # no scheme at all
        {"X-Other": SECRET},
    ],
)
def test_missing_secret(headers: dict[str, str]) -> None:
    assert reason(authenticator(secret=SECRET), headers) == "missing credentials"


def test_one_matching_header_is_enough() -> None:
    headers = {"X-Vapi-Secret": "wrong", "Authorization": f"Bearer {SECRET}"}
    assert authenticator(secret=SECRET).verify(headers, BODY) == "secret"


def test_reason_never_echoes_what_was_sent() -> None:
    sent = "attacker-supplied-value"
    for headers in (
        {"X-Vapi-Secret": sent},
        {"x-timestamp": str(int(NOW)), "x-signature": sent},
        {"x-timestamp": sent, "x-signature": sign(sent)},
    ):
        message = reason(authenticator(secret=SECRET, hmac_secret=HMAC_KEY), headers)
        assert sent not in message
        assert SECRET not in message
        assert HMAC_KEY not in message


# --- HMAC --------------------------------------------------------------------------------------


def test_known_answer_vector() -> None:
    # Computed independently: printf '%s' '1900000000.<body>' | openssl dgst -sha256 -hmac <key>
    headers = {
        "x-timestamp": "1900000000",
        "x-signature": "4f1a28c5ee0052030396161cc214b293eb232aa972b2360b6ee7829bcb5220bd",
    }
    assert authenticator(hmac_secret=HMAC_KEY).verify(headers, BODY) == "hmac"


@pytest.mark.parametrize(
    "timestamp",
    [str(int(NOW)), str(int(NOW * 1000)), str(int(NOW) - 299), str(int(NOW * 1000) + 299_000)],
)
@pytest.mark.parametrize("prefix", ["", "sha256=", "SHA256="])
def test_good_signature(timestamp: str, prefix: str) -> None:
    headers = signed_headers(timestamp, prefix=prefix)
    assert authenticator(hmac_secret=HMAC_KEY).verify(headers, BODY) == "hmac"


def test_signature_hex_is_case_insensitive() -> None:
    headers = {"X-Timestamp": str(int(NOW)), "X-Signature": sign(str(int(NOW))).upper()}
    assert authenticator(hmac_secret=HMAC_KEY).verify(headers, BODY) == "hmac"


def test_good_signature_from_starlette_headers() -> None:
    timestamp = str(int(NOW))
    headers = Headers(
        raw=[(b"x-timestamp", timestamp.encode()), (b"x-signature", sign(timestamp).encode())]
    )
    assert authenticator(hmac_secret=HMAC_KEY).verify(headers, BODY) == "hmac"


@pytest.mark.parametrize(
    "signature",
    [
        "0" * 64,
        sign(str(int(NOW)), key="some-other-key"),
        sign(str(int(NOW) + 1)),  # signed for another timestamp
        sign(str(int(NOW)))[:-1],  # truncated
        "sha512=" + sign(str(int(NOW))),
        "not hex at all",
    ],
)
def test_wrong_signature(signature: str) -> None:
    headers = {"x-timestamp": str(int(NOW)), "x-signature": signature}
    assert reason(authenticator(hmac_secret=HMAC_KEY), headers) == "invalid signature"


@pytest.mark.parametrize("position", [0, len(BODY) // 2, len(BODY) - 1])
def test_body_tampered_by_one_byte(position: int) -> None:
    headers = signed_headers(str(int(NOW)))
    tampered = bytearray(BODY)
    tampered[position] ^= 0x01
    assert reason(authenticator(hmac_secret=HMAC_KEY), headers, bytes(tampered)) == (
        "invalid signature"
    )


def test_body_with_appended_whitespace_is_tampered() -> None:
    # The signature covers the raw bytes, not a re-serialisation of the JSON.
    headers = signed_headers(str(int(NOW)))
    assert reason(authenticator(hmac_secret=HMAC_KEY), headers, BODY + b" ") == (
        "invalid signature"
    )


@pytest.mark.parametrize(
    "timestamp",
    [
        str(int(NOW) - 301),  # stale, seconds
        str(int(NOW) + 301),  # future, seconds
        str(int(NOW * 1000) - 301_000),  # stale, milliseconds
        str(int(NOW * 1000) + 301_000),  # future, milliseconds
        "1",  # the epoch
    ],
)
def test_timestamp_outside_window(timestamp: str) -> None:
    # Correctly signed, so only the clock check can reject it.
    headers = signed_headers(timestamp)
    assert reason(authenticator(hmac_secret=HMAC_KEY), headers) == (
        "timestamp outside the allowed window"
    )


def test_tolerance_is_configurable() -> None:
    headers = signed_headers(str(int(NOW) - 20))
    assert authenticator(hmac_secret=HMAC_KEY, tolerance=30).verify(headers, BODY) == "hmac"
    assert reason(authenticator(hmac_secret=HMAC_KEY, tolerance=10), headers) == (
        "timestamp outside the allowed window"
    )


@pytest.mark.parametrize("timestamp", ["soon", "-1900000000", "1.9e9", "0x71", " 1900000000", ""])
def test_non_numeric_timestamp(timestamp: str) -> None:
    headers = {"x-timestamp": timestamp, "x-signature": sign(timestamp)}
    expected = "missing credentials" if timestamp == "" else "invalid timestamp"
    assert reason(authenticator(hmac_secret=HMAC_KEY), headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-signature": sign(str(int(NOW)))},
        {"x-timestamp": str(int(NOW))},
        {"X-Vapi-Secret": HMAC_KEY},  # the HMAC key is never accepted as a bearer secret
    ],
)
def test_missing_hmac_credentials(headers: dict[str, str]) -> None:
    assert reason(authenticator(hmac_secret=HMAC_KEY), headers) == "missing credentials"


# --- both, neither -----------------------------------------------------------------------------


def test_both_configured_either_passes() -> None:
    auth = authenticator(secret=SECRET, hmac_secret=HMAC_KEY)
    assert auth.verify({"X-Vapi-Secret": SECRET}, BODY) == "secret"
    assert auth.verify(signed_headers(str(int(NOW))), BODY) == "hmac"
    wrong_secret_good_hmac = {"X-Vapi-Secret": "wrong", **signed_headers(str(int(NOW)))}
    assert auth.verify(wrong_secret_good_hmac, BODY) == "hmac"
    good_secret_bad_hmac = {"X-Vapi-Secret": SECRET, "x-timestamp": "1", "x-signature": "0" * 64}
    assert auth.verify(good_secret_bad_hmac, BODY) == "secret"


def test_both_configured_both_failing() -> None:
    auth = authenticator(secret=SECRET, hmac_secret=HMAC_KEY)
    assert reason(auth, {}) == "missing credentials"
    assert reason(auth, {"X-Vapi-Secret": "wrong"}) == "invalid secret"
    bad_both = {"X-Vapi-Secret": "wrong", "x-timestamp": str(int(NOW)), "x-signature": "0" * 64}
    assert reason(auth, bad_both) == "invalid signature"


def test_secret_only_ignores_signature_headers() -> None:
    # A valid-looking HMAC is no credential when no HMAC key is configured.
    assert reason(authenticator(secret=SECRET), signed_headers(str(int(NOW)))) == (
        "missing credentials"
    )


@pytest.mark.parametrize(("secret", "hmac_secret"), [(None, None), ("", ""), ("", None)])
def test_none_configured(secret: str | None, hmac_secret: str | None) -> None:
    auth = authenticator(secret=secret, hmac_secret=hmac_secret)
    assert auth.configured is False
    # Not even an empty header may pass when the configured secret is empty.
    assert reason(auth, {"X-Vapi-Secret": ""}) == "webhook authentication is not configured"


@pytest.mark.parametrize(
    ("secret", "hmac_secret"), [(SECRET, None), (None, HMAC_KEY), (SECRET, HMAC_KEY)]
)
def test_configured(secret: str | None, hmac_secret: str | None) -> None:
    assert authenticator(secret=secret, hmac_secret=hmac_secret).configured is True


def test_negative_tolerance_is_rejected() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        WebhookAuthenticator(bearer=BearerPlan(SECRET), tolerance_seconds=-1)


def test_default_clock_is_wall_time() -> None:
    auth = WebhookAuthenticator(hmac=HmacPlan(HMAC_KEY))
    assert auth.verify(signed_headers(str(int(time.time()))), BODY) == "hmac"
