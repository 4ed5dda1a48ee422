"""
A cell, its runs and lists of things in the report's words: the phrases both parts of REPORT.md use.

.. autosummary::
    :nosignatures:

    cell_text
    runs_text
    list_text
"""

__all__ = ["cell_text", "runs_text", "list_text"]


def cell_text(cell, bias_correction=True):
    """``optimizer lr=.. b2=.. bc=on|off`` of a cell, without bc if not ``bias_correction``."""
    text = "%s lr=%g b2=%g" % (cell.optimizer, cell.lr, cell.beta2)
    return text + (" bc=%s" % ("on" if cell.bias_correction else "off")
                   if bias_correction else "")


def runs_text(group):
    """A group's finished runs, when compared early, with those diverged and running."""
    extra = [text % count for text, count in (("%d diverged", group.diverged),
                                              ("%d running", group.running)) if count]
    text = "%d" % len(group.finished)
    if group.at_epoch is not None:
        text += " after epoch %d" % group.at_epoch
    return text + (" (+%s)" % ", ".join(extra) if extra else "")


def list_text(values):
    """Strings joined by ``; ``, or ``-`` for none."""
    return "; ".join(values) or "-"
