"""Stored SFTP sources: configs kept by name (secrets encrypted at rest) and scanned on a schedule."""
