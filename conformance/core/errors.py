"""Errors a user can fix: printed as one line, never as a traceback."""


class ConfigError(Exception):
    """A user's input (topology, options, versions file) is wrong; the message says where."""
