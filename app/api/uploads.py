"""Reading uploaded files without ever holding more than the byte limit in memory."""

from fastapi import UploadFile

from app.api.errors import UploadTooLarge


def read_at_most(upload: UploadFile, limit: int) -> bytes:
    """Up to `limit + 1` bytes: enough to tell an oversized file without reading all of it."""
    upload.file.seek(0)
    return upload.file.read(limit + 1)


def read_limited(upload: UploadFile, *, limit: int) -> bytes:
    """The file's bytes; `UploadTooLarge` if it is bigger than `limit`."""
    data = read_at_most(upload, limit)
    if len(data) > limit:
        raise UploadTooLarge(
            f"{upload.filename or 'the upload'} is larger than {limit:,} bytes "
            "(LINEUP_MAX_UPLOAD_BYTES)"
        )
    return data
