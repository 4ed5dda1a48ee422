"""
The data a run was trained on, in words: which content, which files.

.. autosummary::
    :nosignatures:

    describe_data
    KNOWN_CONTENTS

A run's ``config.json`` records its data set's ``source``
(:class:`data.Dataset`: a SHA-256 of the decoded content, and whether its files
are the official ones); reports and captions say what that is.
"""
__all__ = ["KNOWN_CONTENTS", "describe_data"]

#: Contents known to this project: (data set, ``data.datasets.content_digest``) -> what it is.
#: MNIST's is that of the official files (the project's copy is pixel-exact, re-compressed);
#: the CIFAR-10 one is the look-alike the project's machines have (JPEG-derived images,
#: no internet to fetch the official ones), so that no result on it passes for official.
KNOWN_CONTENTS = {
    ("mnist", "52cd6c10ae77107af32269dd9d10ca19c1b749e83235a0c75e2f0729ebeaf141"):
        "the official MNIST content",
    ("cifar10", "d9da3685fc2496d7c2b242942d5eb7ffa3c34f63f391af5015bcf4b5fee02f57"):
        "a CIFAR-10 look-alike (JPEG-derived images, not the official ones)",
}


def describe_data(name, source):
    """What a :class:`data.Dataset`'s ``source`` says, in words, for reports and captions.

    Parameters
    ----------
    name : str
        The data set
    source : dict or None
        Its ``source`` (as recorded in a run's ``config.json``), or None

    Returns
    -------
    str
        E.g. ``"the official MNIST content (files re-compressed: their checksums differ)"``
    """
    if not source:
        return "%s, source not recorded" % name
    known = KNOWN_CONTENTS.get((name, source.get("content")))
    files = source.get("files")
    if known is None:
        text = "%s of unrecognised content (SHA-256 %s...)" % (name,
                                                              str(source.get("content"))[:12])
        return text + (", checksum-verified official files" if files == "official" else "")
    text = known
    if files == "other" and known.startswith("the official"):
        text += " (files re-compressed: their checksums differ)"
    return text
