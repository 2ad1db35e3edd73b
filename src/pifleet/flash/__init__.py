"""Writing OS images to SD cards with first-boot configuration."""
