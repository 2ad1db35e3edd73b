"""Virtual Raspberry Pis on this machine, and the Kubernetes stand-in they carry.

The public face of the sandbox: `up`, `down`, `restart`, `list_sandboxes` and the `Sandbox`
they describe. Everything else in this package is private to it.
"""

from pifleet.sandbox.lifecycle import restart, up
from pifleet.sandbox.listing import Listing, list_sandboxes
from pifleet.sandbox.state import Sandbox, SandboxNode
from pifleet.sandbox.teardown import down

__all__ = ["Listing", "Sandbox", "SandboxNode", "down", "list_sandboxes", "restart", "up"]
