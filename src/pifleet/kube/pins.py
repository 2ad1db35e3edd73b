"""Every upstream version and image pifleet deploys into a cluster, in one place.

Change a release here and nowhere else: the manifests in `flannel.py` and `dashboard.py` read
these names. Tags, not digests: the images are multi-architecture (a digest would pin one index
that we cannot check from here), and each tag below is an immutable upstream release.
"""

from __future__ import annotations

from typing import Final

# flannel-io/flannel v0.28.9 (facts.md sections 4 and 9): the CNI config is installed by the
# flannel image's own `/opt/bin/install-conf` since v0.28.6, no longer by `cp`.
FLANNEL_VERSION: Final = "v0.28.9"
FLANNEL_IMAGE: Final = f"ghcr.io/flannel-io/flannel:{FLANNEL_VERSION}"
FLANNEL_CNI_PLUGIN_IMAGE: Final = "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3"

# kubernetes-sigs/headlamp v0.45.0: the successor of Kubernetes Dashboard (facts.md section 1).
HEADLAMP_VERSION: Final = "v0.45.0"
HEADLAMP_IMAGE: Final = f"ghcr.io/headlamp-k8s/headlamp:{HEADLAMP_VERSION}"

# kubernetes/dashboard v2.7.0: the last release with a plain manifest (the project is archived).
DASHBOARD_VERSION: Final = "v2.7.0"
DASHBOARD_IMAGE: Final = f"kubernetesui/dashboard:{DASHBOARD_VERSION}"
DASHBOARD_METRICS_SCRAPER_IMAGE: Final = "kubernetesui/metrics-scraper:v1.0.8"

# Every image above, for checks that nothing else slips into a manifest.
IMAGES: Final = frozenset({FLANNEL_IMAGE, FLANNEL_CNI_PLUGIN_IMAGE, HEADLAMP_IMAGE,
                           DASHBOARD_IMAGE, DASHBOARD_METRICS_SCRAPER_IMAGE})

# The field manager of every server-side apply pifleet makes, and the label on its objects.
FIELD_MANAGER: Final = "pifleet"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "pifleet"}
