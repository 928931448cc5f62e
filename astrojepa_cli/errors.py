"""Errors that the CLI reports as one line and exit status 2."""


class UserError(Exception):
    """Bad input from the user: a missing or corrupt file, a wrong shape,
    NaN pixels, an unknown name. The CLI prints ``error: <message>`` and exits 2."""


class DataError(UserError):
    """A dataset or store that cannot be read or fails validation."""


class DownloadError(UserError):
    """A transfer that failed; any partial file is kept for resuming."""
