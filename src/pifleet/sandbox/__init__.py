"""Virtual Raspberry Pis on this machine, and the Kubernetes stand-in they carry."""
