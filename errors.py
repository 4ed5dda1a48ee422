"""The one exception type for mistakes a user can fix (bad arguments, missing data).

Command lines catch it, print its message as one line on stderr and exit with code 2;
anything else that escapes is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input or environment; the message says what to do."""
