"""Virtual Raspberry Pis on this machine, and the Kubernetes stand-in they carry.

The public face of the sandbox: `up`, `down`, `list_sandboxes` and the `Sandbox` they describe.
Everything else in this package is private to it.
"""

from pifleet.sandbox.lifecycle import Listing, down, list_sandboxes, up
from pifleet.sandbox.state import Sandbox, SandboxNode

__all__ = ["Listing", "Sandbox", "SandboxNode", "down", "list_sandboxes", "up"]
