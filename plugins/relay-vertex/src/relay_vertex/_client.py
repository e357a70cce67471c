"""What both Vertex adapters share: their options, where a project's endpoints are, and
the hub's HTTP client with Google credentials on every call.

Vertex URLs name the project and location
(``https://{location}-aiplatform.googleapis.com/v1/projects/{p}/locations/{l}/...``). The
location is known when the adapter is built; the project may have to come from the
application-default credentials, which are read on the first call, not before. So the
adapters keep the paths their siblings build (``/models/x:generateContent``,
``/chat/completions``) and their client's ``prepare`` (:meth:`Endpoints.preparer`) puts
the project's prefix in front of them, with the bearer token, when the call is made.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from attrs import frozen

from relay_core.plugin import ConfigError
from relay_vertex._auth import GoogleAuth, env_project

if TYPE_CHECKING:
    from relay_core.plugin import Prepare, ProviderSettings

__all__ = ["Endpoints", "Options", "gcs_parts"]

# The multi-region endpoints (aiplatform.{us,eu}.rep.googleapis.com), as google-genai has them.
_MULTI_REGIONS = frozenset({"us", "eu"})
_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,62}")
# A project id (6-30 lowercase letters, digits, hyphens) or a project number.
_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20}")
_GCS_URI = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,221}[a-z0-9])(?:/(.*))?")


@frozen(kw_only=True)
class Options:
    """``providers.<name>.options`` of a Vertex entry, checked.

    ``project``: the Google Cloud project (else ``GOOGLE_CLOUD_PROJECT``, else the
    credentials' own). ``location``: a region, ``global``, or the ``us``/``eu``
    multi-regions (else ``GOOGLE_CLOUD_LOCATION``, else the adapter's default).
    ``gcs_uri``: ``batch.gcs_uri``, where batch input and output files go.
    ``rest``: the options this module does not know, for the adapter to check.
    """

    project: str | None
    location: str
    gcs_uri: str | None
    rest: Mapping[str, Any]

    @classmethod
    def parse(cls, settings: ProviderSettings, *, default_location: str) -> Options:
        options = dict(settings.options)
        where = f"providers.{settings.name}.options"
        project = options.pop("project", None)
        if project is not None and not (isinstance(project, str) and _PROJECT.fullmatch(project)):
            raise ConfigError(f"{where}.project must be a Google Cloud project id, not {project!r}")
        location = options.pop("location", None) or os.environ.get("GOOGLE_CLOUD_LOCATION")
        location = location or default_location
        if not isinstance(location, str) or not _LOCATION.fullmatch(location):
            raise ConfigError(
                f"{where}.location must be a Vertex location (us-central1, global...), "
                f"not {location!r}"
            )
        batch = options.pop("batch", None) or {}
        if not isinstance(batch, Mapping) or set(batch) - {"gcs_uri"}:
            raise ConfigError(f"{where}.batch takes only gcs_uri: gs://bucket/prefix")
        gcs_uri = batch.get("gcs_uri")
        if gcs_uri is not None and not (isinstance(gcs_uri, str) and _GCS_URI.fullmatch(gcs_uri)):
            raise ConfigError(f"{where}.batch.gcs_uri must be gs://bucket/prefix, not {gcs_uri!r}")
        return cls(project=project, location=location, gcs_uri=gcs_uri, rest=options)

    def host(self, base_url: str | None) -> str:
        """The API's origin: ``base_url`` when the catalog sets one (a private endpoint)."""
        if base_url:
            return base_url.rstrip("/")
        if self.location == "global":
            return "https://aiplatform.googleapis.com"
        if self.location in _MULTI_REGIONS:
            return f"https://aiplatform.{self.location}.rep.googleapis.com"
        return f"https://{self.location}-aiplatform.googleapis.com"


def gcs_parts(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` as ``("bucket", "a/b")``."""
    match = _GCS_URI.fullmatch(uri)
    if match is None:
        raise ValueError(f"not a gs:// URI: {uri!r}")
    return match[1], (match[2] or "").strip("/")


class Endpoints:
    """The URLs of one provider entry's project and location."""

    def __init__(self, settings: ProviderSettings, options: Options, auth: GoogleAuth) -> None:
        self._name = settings.name
        self._options = options
        self._auth = auth
        self.host = options.host(settings.base_url)

    async def project(self) -> str:
        project = self._options.project or env_project() or await self._auth.project()
        if not project:
            raise ConfigError(
                f"provider {self._name!r} needs a Google Cloud project: set "
                f"providers.{self._name}.options.project or GOOGLE_CLOUD_PROJECT"
            )
        return project

    async def location_url(self, path: str = "") -> str:
        """``{host}/v1/projects/{p}/locations/{l}`` followed by ``path``."""
        project = quote(await self.project(), safe="")
        base = f"{self.host}/v1/projects/{project}/locations/{self._options.location}"
        return f"{base}/{path.lstrip('/')}" if path else base

    def resource_url(self, name: str) -> str:
        """The URL of a resource given by its full name (``projects/.../x/1``)."""
        return f"{self.host}/v1/{quote(name, safe='/-._~')}"

    async def headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        return {**(headers or {}), "authorization": f"Bearer {await self._auth.token()}"}

    def preparer(self, scope: str) -> Prepare:
        """What the adapter's client does before each request (its ``prepare``): a path
        (``/models/x:generateContent``) goes under the project's ``{location_url}/{scope}``,
        an absolute URL is left alone, and the bearer token is added."""

        async def prepare(
            url: str, headers: Mapping[str, str] | None
        ) -> tuple[str, Mapping[str, str]]:
            if url.startswith("/"):
                url = await self.location_url(scope) + url
            return url, await self.headers(headers)

        return prepare
