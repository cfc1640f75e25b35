"""ai-sysadmin: an autonomous system administrator for NixOS on local models."""

__version__ = "0.1.0"
