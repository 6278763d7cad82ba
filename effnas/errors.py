"""The one exception family for bad input.

A `UserError` is a problem with what the user gave (a config value, a file, a
directory): the command line prints its message as one `error:` line and exits 2.
Anything else that escapes a command is a bug in our code and keeps its
traceback (exit 1). `UserError` subclasses `ValueError`, so library callers
that catch `ValueError` keep working.
"""


class UserError(ValueError):
    """Bad input: a config value, a data file, a run directory, an architecture."""
