"""fileregistry: SFTP landing-zone monitor and virtual file system catalog."""

__version__ = "0.1.0"
