"""Switchboard's shared library: everything the services have in common, and their contracts."""
