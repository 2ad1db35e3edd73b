"""Remote engine: pyinfra glue, SSH trust, and running commands on nodes."""
