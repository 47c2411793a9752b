"""vmemu: a deterministic concurrency emulator of FreeBSD's vm_map_clean."""
