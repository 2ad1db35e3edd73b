"""The phases of `pifleet up`, one module each."""
