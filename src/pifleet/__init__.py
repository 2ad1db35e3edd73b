"""pifleet: turn a fleet of Raspberry Pis into a Kubernetes cluster."""

__version__ = "0.1.0"
