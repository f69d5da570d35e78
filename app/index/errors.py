"""Why a stored index could not be used.

Every failure is an `IndexLoadError`, so a caller that will rebuild from the
database anyway can catch one type; the subclasses say whether the files are
absent, damaged, or intact but describing something other than expected.
"""


class IndexLoadError(Exception):
    """A stored index could not be loaded as asked."""


class IndexMissingError(IndexLoadError):
    """No index file exists where one was looked for (the normal first start)."""


class IndexCorruptError(IndexLoadError):
    """The index or its sidecar is unreadable, truncated, or they disagree."""


class IndexMismatchError(IndexLoadError):
    """The files are intact but describe another model, format, or set of faces."""
