"""Hardware-targeted architecture search on measured LUTs (next issues)."""
