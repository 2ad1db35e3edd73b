"""Talking to the cluster: kubeconfig, manifests built in code, apply, wait."""
