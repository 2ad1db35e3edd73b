"""A Kubernetes API client for one cluster: lightkube over the in-memory credentials."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.config.models import Cluster, Context, User
from lightkube.core.exceptions import LoadResourceError
from lightkube.core.resource import NamespacedResource
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import GenericGlobalResource, GenericNamespacedResource

from pifleet.errors import BadInput
from pifleet.kube.credentials import Credentials, credentials
from pifleet.kube.errors import talking_to


class _Transport(httpx2.BaseTransport):
    """HTTPS with the context's TLS settings, adding its Authorization header (if any)."""

    def __init__(self, creds: Credentials) -> None:
        self._inner = httpx2.HTTPTransport(verify=creds.ssl_context)
        self._authorization = creds.authorization

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._authorization and "Authorization" not in request.headers:
            request.headers["Authorization"] = self._authorization
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class Api:
    """One cluster's API server, reached with one kubeconfig context.

    `lightkube` is the underlying client for anything this layer does not wrap. Requests made
    through the methods of `pifleet.kube` have their failures put in pifleet's words.
    """

    def __init__(self, creds: Credentials, timeout: float = 10.0) -> None:
        self.credentials = creds
        transport = _Transport(creds)
        # lightkube is given only the server: the TLS context (with the client certificate)
        # and the auth header travel in the transport, so lightkube never writes credentials
        # to temporary files (it does for inline `*-data` it is given).
        config = KubeConfig(clusters={"c": Cluster(server=creds.server)},
                            contexts={"c": Context(cluster="c", user="u")},
                            users={"u": User()}, current_context="c")
        self.lightkube = Client(config, timeout=httpx2.Timeout(timeout), trust_env=False,
                                transport=transport)
        self._http = httpx2.Client(base_url=creds.server, transport=transport,
                                   timeout=timeout, trust_env=False)

    @property
    def server(self) -> str:
        """The API server's URL."""
        return self.credentials.server

    def talking(self) -> AbstractContextManager[None]:
        """A context manager that puts failures of requests to this API in pifleet's words."""
        return talking_to(self.server, self.credentials.host)

    def version(self) -> str:
        """The server's `gitVersion` (`/version`): the cheapest proof that the API answers."""
        with self.talking():
            response = self._http.get("/version")
            response.raise_for_status()
            return str(response.json().get("gitVersion", ""))

    def close(self) -> None:
        """Release the connection pool."""
        self.lightkube.close()
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Api({self.credentials!r})"


def connect(config: Mapping[str, Any] | str, context: str | None = None, *,
            source: str = "kubeconfig", base: Path | None = None,
            timeout: float = 10.0) -> Api:
    """An API client for `context` (default: current) of a kubeconfig held in memory."""
    return Api(credentials(config, context, source=source, base=base), timeout)


_GENERIC: dict[tuple[str, str], Any] = {}


def resource(api_version: str, kind: str) -> Any:
    """lightkube's resource class for a kind, decoding objects as plain dicts.

    lightkube's typed models reject an object that lacks a field their schema requires (a
    Node whose kubelet reported less than the current one does), and drop fields they do not
    know; pifleet reads objects as the server sent them. The typed class only lends its API
    path (group, version, plural, scope).
    """
    key = (api_version, kind)
    if key not in _GENERIC:
        try:
            typed = resource_registry.load(api_version, kind)
        except (LoadResourceError, ValueError):
            raise BadInput(f"unknown Kubernetes kind {kind} ({api_version})") from None
        base = GenericNamespacedResource if issubclass(typed, NamespacedResource) \
            else GenericGlobalResource
        _GENERIC[key] = type(kind, (base,), {"_api_info": typed._api_info})
    return _GENERIC[key]
