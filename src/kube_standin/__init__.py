"""Programs that run on sandbox nodes: the kubeadm, kubelet and API server stand-ins.

A separate program, not part of pifleet: `pifleet sandbox` copies this package verbatim into the
stand-in's .deb packages, and it runs with the node's Debian python3. It may therefore import
only the standard library, `cryptography` and `yaml` (Debian bookworm's python3-cryptography 38
and python3-yaml), never pifleet; and pifleet never imports it (import-linter contracts in
pyproject.toml, and tests/unit/test_standin_imports.py for the third-party allowlist).
Everything it prints says it is the sandbox stand-in, not Kubernetes.
"""
