"""Fixtures for relay-bedrock's tests. Nothing here reaches the network or a real AWS
account: every test runs with a fake profile in a temporary directory (AWS's documented
example keys), unit tests answer through ``httpx.MockTransport``, and wire-format tests
replay the cassettes in ``cassettes/relay-bedrock``. Hubs load no entry points."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from bedrock_support import ACCESS_KEY, CASSETTES, REGION, SECRET_KEY, SESSION_TOKEN

import relay_bedrock
from relay_core import Hub
from relay_core.testing import cassette_player, hub_maker, recorded_waits

_AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@pytest.fixture(autouse=True)
def aws_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake AWS setup: the default profile with long-term keys and a region, and a
    profile ``temp`` with a session token; nothing of the machine's own AWS setup, and
    no instance metadata lookups."""
    for name in _AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        f"[temp]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        f"aws_session_token = {SESSION_TOKEN}\n"
    )
    config = tmp_path / "config"
    config.write_text(
        f"[default]\nregion = {REGION}\n[profile temp]\nregion = eu-west-3\n[profile empty]\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


@pytest.fixture
def make_hub() -> Iterator[Callable[..., Hub]]:
    """A hub with this plugin registered in code, answering through ``handler`` (or
    through the real transport, which cassettes replace); closed after the test."""
    with hub_maker(relay_bedrock) as make:
        yield make


@pytest.fixture
def cassette() -> Callable[[str], AbstractContextManager[Any]]:
    """``with cassette("name"):`` replays ``cassettes/relay-bedrock/name.yaml``."""
    return cassette_player(CASSETTES)


@pytest.fixture
def waits() -> Iterator[list[float]]:
    with recorded_waits() as recorded:
        yield recorded
