"""Errors a user can act on.

Library code raises :class:`NerfheadError` (or a subclass) with a one-line message that
says what is wrong and what to do; the CLI prints that line and exits non-zero without a
traceback. Anything else escaping to the CLI is a bug and keeps its traceback.
"""


class NerfheadError(Exception):
    """An error caused by the user's input or environment, with a one-line message."""

    exit_code = 2


class InputError(NerfheadError):
    """A file or argument the user gave cannot be used."""


class NoFaceError(InputError):
    """The capture does not show a trackable face."""


class IdentityError(NerfheadError):
    """An identity is missing, incomplete, or would be overwritten."""
