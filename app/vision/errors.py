"""Why a photo could not be used, as typed errors with a stable code each.

Every front door maps these to a 4xx answer with the same `code`, so a client
can tell "not an image" from "too big" without parsing prose.
"""


class ImageRejected(ValueError):
    """Base class: the bytes given cannot be used as a photo."""

    code = "image_rejected"


class EmptyImage(ImageRejected):
    """Zero bytes were given."""

    code = "empty_image"


class UnreadableImage(ImageRejected):
    """The bytes are not an image format Pillow can read."""

    code = "unreadable_image"


class TruncatedImage(ImageRejected):
    """The header parsed but the pixel data ends early or is corrupt."""

    code = "truncated_image"


class ImageTooLarge(ImageRejected):
    """More pixels than allowed: a decompression bomb or simply too big to process."""

    code = "image_too_large"


class AbsurdAspectRatio(ImageRejected):
    """So long and thin that it cannot be a photo of a face worth searching."""

    code = "absurd_aspect_ratio"
