"""Programs that run on sandbox nodes: the kubeadm, kubelet and API server stand-ins.

This package is copied verbatim into the stand-in .deb packages and runs with the node's Debian
python3. It may therefore import only the standard library, `cryptography` and `yaml` (Debian
bookworm's python3-cryptography 38 and python3-yaml), and never anything else from pifleet.
Every module uses relative imports so it works both here and as the installed `kube_standin`.
"""
