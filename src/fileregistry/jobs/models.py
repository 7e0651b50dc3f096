"""Durable job tables (filled in by the VFS/jobs work)."""
