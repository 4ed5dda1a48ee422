"""The one exception type for mistakes a user can fix (bad arguments, missing data).

Command lines catch it, print its message as one line on stderr and exit with code 2;
anything else that escapes is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input or environment; the message says what to do."""


def run_cli(main, argv=None, prog="run.py"):
    """Call ``main(argv)`` and turn a :class:`UserError` into one line on stderr and exit code 2.

    Returns the exit code (``main``'s return value, 0 for None).
    """
    import sys
    import warnings
    # Warnings meant for users (e.g. a local data file that is not the official one):
    # one line each, without the source line Python prints by default.
    warnings.formatwarning = lambda message, *args, **kwargs: "warning: %s\n" % message
    try:
        return main(argv) or 0
    except UserError as exc:
        print("%s: error: %s" % (prog, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("%s: interrupted; finished epochs are checkpointed, run the same command "
              "again to resume" % prog, file=sys.stderr)
        return 130
