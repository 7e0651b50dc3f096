"""Helpers for tests and benchmarks: a real OpenSSH server on loopback."""
