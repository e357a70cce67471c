"""Authentication: SigV4 signatures from the AWS credential chain (checked by recomputing
them with botocore), Bedrock API keys, regions, credential references, botocore imported
only when a signed call is made, and no credential in any error, log line or repr."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from bedrock_support import (
    ACCESS_KEY,
    API_KEY,
    MODEL,
    REGION,
    SECRET_KEY,
    SECRETS,
    SESSION_TOKEN,
    aws_error,
    converse,
)

import relay_bedrock
from relay_bedrock._adapter import BedrockProvider
from relay_core import AuthenticationError, ConfigError, Hub, ProviderSettings, Secret
from relay_core.testing import hub_for

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
    r"(?P<service>[a-z0-9-]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


class Recorder:
    """A fake Bedrock answering every request with a short Converse answer."""

    def __init__(self, answer: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or httpx.Response(200, json=converse({"text": "ok"}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer


def _expected_signature(request: httpx.Request, signed: str, *, token: str | None) -> str:
    """The signature botocore computes for this request as it went out."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {name: request.headers[name] for name in signed.split(";")}
    aws = AWSRequest(
        method=request.method, url=str(request.url), data=request.content, headers=headers
    )
    aws.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), "bedrock", _region(request))
    canonical = signer.canonical_request(aws)
    return str(signer.signature(signer.string_to_sign(aws, canonical), aws))


def _region(request: httpx.Request) -> str:
    match = _AUTHORIZATION.fullmatch(request.headers["authorization"])
    assert match is not None
    return match["region"]


def test_requests_carry_a_sigv4_signature_for_bedrock(make_hub: Callable[..., Hub]) -> None:
    server = Recorder()
    make_hub(server).chat(f"bedrock/{MODEL}", "Hi")
    request = server.requests[-1]
    assert str(request.url) == (
        f"https://bedrock-runtime.{REGION}.amazonaws.com/model/"
        "anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    )
    match = _AUTHORIZATION.fullmatch(request.headers["authorization"])
    assert match is not None, request.headers["authorization"]
    assert (match["key"], match["region"], match["service"]) == (ACCESS_KEY, REGION, "bedrock")
    assert match["date"] == request.headers["x-amz-date"][:8]
    assert set(match["signed"].split(";")) == {"content-type", "host", "x-amz-date"}
    assert match["signature"] == _expected_signature(request, match["signed"], token=None)
    assert "x-amz-security-token" not in request.headers


def test_a_profile_with_a_session_token_signs_it_too(make_hub: Callable[..., Hub]) -> None:
    server = Recorder()
    catalog = "providers:\n  bedrock:\n    options: {credentials: aws:profile/temp}\n"
    make_hub(server, catalog).chat(f"bedrock/{MODEL}", "Hi")
    request = server.requests[-1]
    assert request.url.host == "bedrock-runtime.eu-west-3.amazonaws.com"  # the profile's region
    assert request.headers["x-amz-security-token"] == SESSION_TOKEN
    match = _AUTHORIZATION.fullmatch(request.headers["authorization"])
    assert match is not None
    assert "x-amz-security-token" in match["signed"].split(";")
    assert match["signature"] == _expected_signature(request, match["signed"], token=SESSION_TOKEN)


def test_an_inference_profile_arn_is_one_encoded_path_segment(
    make_hub: Callable[..., Hub],
) -> None:
    server = Recorder()
    arn = (
        "arn:aws:bedrock:us-east-1:111122223333:inference-profile/"
        "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    )
    make_hub(server).chat(f"bedrock/{arn}", "Hi")
    request = server.requests[-1]
    assert request.url.raw_path.decode() == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A111122223333%3Ainference-profile%2F"
        "us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    )
    match = _AUTHORIZATION.fullmatch(request.headers["authorization"])
    assert match is not None
    assert match["signature"] == _expected_signature(request, match["signed"], token=None)


def test_the_region_option_wins_over_the_profile(make_hub: Callable[..., Hub]) -> None:
    server = Recorder()
    catalog = "providers:\n  bedrock:\n    options: {region: ap-northeast-1}\n"
    make_hub(server, catalog).chat(f"bedrock/{MODEL}", "Hi")
    assert server.requests[-1].url.host == "bedrock-runtime.ap-northeast-1.amazonaws.com"
    assert _region(server.requests[-1]) == "ap-northeast-1"


def test_aws_region_in_the_environment_is_read(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    server = Recorder()
    make_hub(server).chat(f"bedrock/{MODEL}", "Hi")
    assert _region(server.requests[-1]) == "eu-central-1"


def test_no_region_anywhere_is_a_config_error(
    make_hub: Callable[..., Hub], aws_profile: Path
) -> None:
    (aws_profile / "config").write_text("[default]\n")
    with pytest.raises(ConfigError, match=r"needs an AWS region: set providers\.bedrock"):
        make_hub(Recorder()).chat(f"bedrock/{MODEL}", "Hi")


def test_environment_credentials_are_read(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAI44QH8DHBEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY")
    server = Recorder()
    make_hub(server).chat(f"bedrock/{MODEL}", "Hi")
    assert "Credential=AKIAI44QH8DHBEXAMPLE/" in server.requests[-1].headers["authorization"]


def test_an_api_key_from_the_environment_is_a_bearer_token(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    server = Recorder()
    make_hub(server).chat(f"bedrock/{MODEL}", "Hi")
    request = server.requests[-1]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-amz-date" not in request.headers


def test_an_api_key_reference_in_the_catalog_is_a_bearer_token(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_BEDROCK_KEY", API_KEY)
    server = Recorder()
    catalog = "providers:\n  bedrock:\n    api_key: $env.TEAM_BEDROCK_KEY\n"
    make_hub(server, catalog).chat(f"bedrock/{MODEL}", "Hi")
    assert server.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"


def test_explicit_credentials_win_over_an_api_key_in_the_environment(
    make_hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", API_KEY)
    server = Recorder()
    catalog = "providers:\n  bedrock:\n    options: {credentials: aws:default}\n"
    make_hub(server, catalog).chat(f"bedrock/{MODEL}", "Hi")
    assert server.requests[-1].headers["authorization"].startswith("AWS4-HMAC-SHA256 ")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("default", "is not a credential reference"),
        ("aws:profile/", "is not a credential reference"),
        ("aws:profile/a b", "is not a credential reference"),
        (3, "must be a reference"),
    ],
)
def test_a_bad_credential_reference_points_at_its_line(
    make_hub: Callable[..., Hub], value: Any, message: str
) -> None:
    catalog = (
        "models:\n  claude: {target: bedrock/x}\n"
        f"providers:\n  bedrock:\n    options:\n      credentials: {json.dumps(value)}\n"
    )
    hub = make_hub(Recorder(), catalog)
    with pytest.raises(ConfigError, match=message) as caught:
        hub.chat("claude", "Hi")
    assert caught.value.line == 6
    assert "options.credentials" in str(caught.value)


def test_a_pasted_access_key_is_refused_with_the_catalog(make_hub: Callable[..., Hub]) -> None:
    catalog = f"providers:\n  bedrock:\n    options:\n      credentials: {ACCESS_KEY}\n"
    with pytest.raises(ConfigError, match="looks like an API key") as caught:
        make_hub(Recorder(), catalog)
    assert caught.value.line == 4
    assert ACCESS_KEY not in str(caught.value)


def test_an_unknown_profile_is_a_config_error(make_hub: Callable[..., Hub]) -> None:
    catalog = (
        "providers:\n  bedrock:\n    options: {credentials: aws:profile/nope, region: us-east-1}\n"
    )
    with pytest.raises(ConfigError, match="AWS profile 'nope'"):
        make_hub(Recorder(), catalog).chat(f"bedrock/{MODEL}", "Hi")


def test_a_profile_without_credentials_is_an_authentication_error(
    make_hub: Callable[..., Hub],
) -> None:
    catalog = (
        "providers:\n  bedrock:\n    options: {credentials: aws:profile/empty, region: us-east-1}\n"
    )
    with pytest.raises(AuthenticationError, match=r"no AWS credentials found .*profile 'empty'"):
        make_hub(Recorder(), catalog).chat(f"bedrock/{MODEL}", "Hi")


@pytest.mark.parametrize("error_type", ["UnrecognizedClientException", "ExpiredTokenException"])
def test_a_rejected_signature_names_no_credential(
    make_hub: Callable[..., Hub], caplog: pytest.LogCaptureFixture, error_type: str
) -> None:
    # An answer that echoes every credential back, as a misbehaving proxy might.
    echoed = f"bad credentials {ACCESS_KEY} {SECRET_KEY} {SESSION_TOKEN}"
    server = Recorder(aws_error(403, error_type, echoed))
    catalog = "providers:\n  bedrock:\n    options: {credentials: aws:profile/temp}\n"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as caught:
        make_hub(server, catalog).chat(f"bedrock/{MODEL}", "Hi")
    texts = [
        str(caught.value),
        repr(caught.value),
        caught.value.provider_message or "",
        caplog.text,
    ]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_settings_and_adapter_never_show_an_api_key() -> None:
    adapter = BedrockProvider(ProviderSettings(name="bedrock", api_key=Secret(API_KEY)))
    assert API_KEY not in repr(adapter.settings)
    assert API_KEY not in repr(vars(adapter))


def test_the_adapter_and_a_catalog_load_without_botocore(tmp_path: Path) -> None:
    catalog = tmp_path / "relay.yaml"
    catalog.write_text(
        "models:\n  claude: {target: bedrock/anthropic.claude-3-5-haiku-20241022-v1:0}\n"
        "providers:\n  bedrock:\n    options: {credentials: aws:profile/work, region: us-east-1}\n"
    )
    probe = (
        "import sys\n"
        "import relay_bedrock._adapter\n"
        "from relay_core import Hub\n"
        f"hub = Hub.from_yaml({str(catalog)!r})\n"
        "hub.get('claude').adapter\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'botocore'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_an_api_key_call_never_imports_botocore() -> None:
    probe = (
        "import sys, httpx, json\n"
        "import relay_bedrock\n"
        "from relay_core.testing import hub_for\n"
        "answer = {'output': {'message': {'role': 'assistant', 'content': [{'text': 'ok'}]}},"
        " 'stopReason': 'end_turn', 'usage': {'inputTokens': 1, 'outputTokens': 1}}\n"
        "transport = httpx.MockTransport(lambda r: httpx.Response(200, json=answer))\n"
        "catalog = 'providers:\\n  bedrock:\\n    options: {region: us-east-1}\\n'\n"
        "with hub_for(catalog, relay_bedrock, transport=transport) as hub:\n"
        "    assert hub.chat('bedrock/m', 'Hi').text == 'ok'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'botocore'))\n"
    )
    env = {"AWS_BEARER_TOKEN_BEDROCK": API_KEY, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == "[]"


def test_a_signed_call_imports_botocore_then() -> None:
    # The other side of the two tests above: the probe would pass with no signing at all.
    hub = hub_for("", relay_bedrock, transport=httpx.MockTransport(Recorder()))
    with hub:
        hub.chat(f"bedrock/{MODEL}", "Hi")
    assert "botocore.auth" in sys.modules
