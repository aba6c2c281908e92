"""The Vonage REST client against the fake Voice API: JWT signature, paths and bodies, errors."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from babelfish.devtools.fake_call import FakeCall
from babelfish.devtools.fake_vonage import FakeVonage
from babelfish.telephony.rest import ConfigError, VonageApiError, VonageRest, read_private_key

APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"


def keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return keypair()


async def test_talk_and_stop_reach_the_call_with_a_valid_jwt(keys: tuple[str, str], tmp_path) -> None:
    private, public = keys
    key_file = tmp_path / "private.key"
    key_file.write_text(private)
    async with FakeVonage("http://127.0.0.1:1", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        call = FakeCall(vonage, "447700900001", vonage.number)
        vonage.calls.append(call)
        rest = VonageRest(APP_ID, str(key_file), api)  # the key as a file path
        try:
            await rest.talk(call.uuid, "Guten Tag", "de-DE", style=2)
            await rest.stop_talk(call.uuid)
        finally:
            await rest.aclose()
    assert [(r.method, r.path) for r in vonage.api_requests] == [
        ("PUT", f"/v1/calls/{call.uuid}/talk"), ("DELETE", f"/v1/calls/{call.uuid}/talk")]
    assert call.talks[0]["text"] == "Guten Tag" and call.talks[0]["language"] == "de-DE"
    assert call.talks[0]["style"] == 2 and call.talk_stops == 1
    claims = vonage.api_requests[0].claims
    assert claims["application_id"] == APP_ID and claims["exp"] > claims["iat"] and claims["jti"]


async def test_a_jwt_signed_with_another_key_is_refused(keys: tuple[str, str]) -> None:
    _, public = keys
    other_private, _ = keypair()
    async with FakeVonage("http://127.0.0.1:1", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        call = FakeCall(vonage, "447700900001", vonage.number)
        vonage.calls.append(call)
        rest = VonageRest(APP_ID, other_private, api)
        try:
            with pytest.raises(VonageApiError) as error:
                await rest.talk(call.uuid, "Hello", "en-GB")
        finally:
            await rest.aclose()
    assert error.value.status == 401 and "Unauthorized" in str(error.value)
    assert call.talks == []
    # the refused token really is signed by the other key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(VonageRest(APP_ID, other_private, api).token(), public, algorithms=["RS256"])


async def test_unknown_call_is_an_api_error_with_vonage_reason(keys: tuple[str, str]) -> None:
    private, public = keys
    async with FakeVonage("http://127.0.0.1:1", application_id=APP_ID, public_key=public) as vonage:
        api = await vonage.start_api()
        rest = VonageRest(APP_ID, private, api)
        try:
            with pytest.raises(VonageApiError, match="404: Not Found"):
                await rest.hang_up("no-such-call")
        finally:
            await rest.aclose()


def test_missing_or_bad_credentials_fail_at_startup(tmp_path) -> None:
    with pytest.raises(ConfigError, match="application id"):
        VonageRest("", "x")
    with pytest.raises(ConfigError, match="neither PEM text nor a readable file"):
        read_private_key(str(tmp_path / "missing.key"))
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="does not hold a PEM key"):
        read_private_key(str(bad))
    with pytest.raises(ConfigError, match="cannot sign"):
        VonageRest(APP_ID, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
