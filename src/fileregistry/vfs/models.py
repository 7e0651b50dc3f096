"""Virtual file system tables (filled in by the VFS work)."""
