"""The catalog's ``options`` for a Bedrock provider, checked without importing anything
heavy: the entry point module's ``relay_configure`` runs this over the catalog (so a
mistake is reported with its file and line), and the adapter runs it again when built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from attrs import frozen

__all__ = ["DEFAULT_MAX_TOKENS", "BatchOptions", "Options", "parse_credentials"]

# Anthropic's Messages body requires max_tokens; sent on InvokeModel and in batch
# records when neither the call nor the catalog sets one.
DEFAULT_MAX_TOKENS = 4096
# Bedrock's quota "Minimum number of records per batch inference job" (100 for every
# model it lists at the time of writing).
MIN_BATCH_RECORDS = 100

_KNOWN = ("api", "region", "credentials", "default_max_tokens", "batch")
_BATCH_KNOWN = ("s3_uri", "role_arn", "min_records", "timeout_hours")
# An AWS region name such as us-east-1, eu-central-2, us-gov-west-1.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_PROFILE = re.compile(r"[A-Za-z0-9_.+=,@-]+")
_ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::\d{12}:role/.+")
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?")

# ``fail(message, path)`` builds the error for the option at ``path`` under ``options``.
Fail = Callable[[str, Sequence[str | int]], Exception]


def parse_credentials(value: object) -> str | None:
    """The AWS profile a credential reference names: ``aws:default`` is botocore's
    standard chain (``None``: environment, shared files' default profile, SSO, container
    or instance role), ``aws:profile/NAME`` the chain with that profile. Raises
    :class:`ValueError` with what is wrong."""
    if not isinstance(value, str):
        raise ValueError("must be a reference: aws:default or aws:profile/NAME")
    if value == "aws:default":
        return None
    prefix = "aws:profile/"
    if value.startswith(prefix) and _PROFILE.fullmatch(value[len(prefix) :]):
        return value[len(prefix) :]
    raise ValueError(
        f"{value!r} is not a credential reference: write aws:default (the standard AWS "
        "chain) or aws:profile/NAME (a profile of ~/.aws/config)"
    )


@frozen
class BatchOptions:
    """Where batch inference jobs keep their files, and the role Bedrock runs them as."""

    bucket: str
    prefix: str
    role_arn: str
    min_records: int = MIN_BATCH_RECORDS
    timeout_hours: int | None = None

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @classmethod
    def parse(cls, value: object, fail: Fail) -> BatchOptions:
        if not isinstance(value, Mapping):
            raise fail("must be a mapping with s3_uri and role_arn", ["batch"])
        unknown = sorted(set(value) - set(_BATCH_KNOWN))
        if unknown:
            raise fail(f"unknown option(s) {', '.join(unknown)}", ["batch", unknown[0]])
        uri = value.get("s3_uri")
        match = _S3_URI.fullmatch(uri) if isinstance(uri, str) else None
        if match is None:
            raise fail("must be an S3 URI: s3://bucket/prefix", ["batch", "s3_uri"])
        role = value.get("role_arn")
        if not isinstance(role, str) or not _ROLE_ARN.fullmatch(role):
            raise fail(
                "must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                ["batch", "role_arn"],
            )
        minimum = value.get("min_records", MIN_BATCH_RECORDS)
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
            raise fail("must be a positive whole number", ["batch", "min_records"])
        hours = value.get("timeout_hours")
        # CreateModelInvocationJob takes 24 to 168 hours.
        if hours is not None and (
            isinstance(hours, bool) or not isinstance(hours, int) or not 24 <= hours <= 168
        ):
            raise fail("must be a whole number of hours from 24 to 168", ["batch", "timeout_hours"])
        prefix = (match.group(2) or "").strip("/")
        return cls(match.group(1), prefix, role, minimum, hours)


@frozen
class Options:
    """The checked options. See the plugin's README for each one."""

    api: Literal["converse", "invoke"] = "converse"
    region: str | None = None
    profile: str | None = None
    default_max_tokens: int = DEFAULT_MAX_TOKENS
    batch: BatchOptions | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any], fail: Fail) -> Options:
        unknown = sorted(set(options) - set(_KNOWN))
        if unknown:
            raise fail(
                f"unknown option(s) {', '.join(unknown)}; known: {', '.join(_KNOWN)}",
                [unknown[0]],
            )
        api = options.get("api", "converse")
        if api not in ("converse", "invoke"):
            raise fail("must be converse or invoke", ["api"])
        region = options.get("region")
        if region is not None and (not isinstance(region, str) or not _REGION.fullmatch(region)):
            raise fail(f"{region!r} is not an AWS region name such as us-east-1", ["region"])
        profile = None
        if "credentials" in options:
            try:
                profile = parse_credentials(options["credentials"])
            except ValueError as error:
                raise fail(str(error), ["credentials"]) from None
        max_tokens = options.get("default_max_tokens", DEFAULT_MAX_TOKENS)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise fail("must be a positive whole number", ["default_max_tokens"])
        batch = BatchOptions.parse(options["batch"], fail) if "batch" in options else None
        return cls(api, region, profile, max_tokens, batch)
