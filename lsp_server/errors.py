"""Errors that reach users as one clear line (never a traceback)."""


class UserError(Exception):
    """A mistake the user can fix; the message says how."""
