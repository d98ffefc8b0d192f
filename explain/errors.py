"""The one error type users can cause; its message says what to do."""


class LensError(Exception):
    """A problem the user can fix (bad file, unknown name, missing weights)."""
