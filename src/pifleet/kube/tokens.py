"""Short-lived ServiceAccount tokens from the TokenRequest API (never a long-lived Secret)."""

from __future__ import annotations

from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ServiceAccountToken

from pifleet.kube.client import Api
from pifleet.kube.dashboard import LOGIN_NAMESPACE, login_account
from pifleet.kube.errors import KubeError

DEFAULT_SECONDS = 8 * 3600  # a lab session; the API server may grant less


def request_token(api: Api, account: str, namespace: str,
                  seconds: int = DEFAULT_SECONDS) -> str:
    """A bearer token for `namespace/account`, valid for about `seconds`.

    The token is a credential: callers print it only when the user asked for it alone.
    """
    request = ServiceAccountToken(metadata=ObjectMeta(),
                                  spec=TokenRequestSpec(audiences=[], expirationSeconds=seconds))
    with api.talking():
        granted = api.lightkube.create(request, account, namespace=namespace)
    if granted.status is None or not granted.status.token:
        raise KubeError(f"the API server at {api.server} granted no token for "
                        f"{namespace}/{account}")
    return str(granted.status.token)


def login_token(api: Api, read_only: bool = False, seconds: int = DEFAULT_SECONDS) -> str:
    """A token for the dashboard's login account (`login_objects` must be applied first)."""
    return request_token(api, login_account(read_only), LOGIN_NAMESPACE, seconds)
