"""The ``switchboard`` command-line tool."""
