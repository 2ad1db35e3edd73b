"""Fixtures of the pifleet.kube tests: one API server stand-in per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kube_cluster import StandinCluster, fleet_document, running_standin
from pifleet.kube import Api, connect


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinCluster]:
    """A stand-in with a control plane and a worker registered, for one test module."""
    with running_standin(tmp_path_factory.mktemp("standin")) as c:
        c.add_node("laperouse", roles=("control-plane",))
        c.add_node("black-pearl")
        yield c


@pytest.fixture(scope="module")
def api(cluster: StandinCluster) -> Iterator[Api]:
    """pifleet's API client for that cluster, built from the fleet's kubeconfig in memory."""
    with connect(fleet_document(cluster)) as client:
        yield client
