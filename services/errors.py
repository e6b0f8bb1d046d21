"""Errors every entry point understands."""


class UsageError(Exception):
    """Bad usage or input: the CLI prints one line and exits with status 2."""
