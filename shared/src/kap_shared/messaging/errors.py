"""Errors a consumer raises to say how a message should be treated."""


class PermanentError(Exception):
    """Retrying cannot help (unknown session, closed window...): dead-letter at once."""
