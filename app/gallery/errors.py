"""Domain errors, each with a stable `code` that front doors pass on to clients."""


class GalleryError(Exception):
    """Base class for everything the gallery refuses; `code` is machine-readable."""

    code = "gallery_error"


class SubjectNotFound(GalleryError):
    code = "subject_not_found"

    def __init__(self, subject_id: int) -> None:
        super().__init__(f"there is no subject with id {subject_id}")


class FaceNotFound(GalleryError):
    code = "face_not_found"

    def __init__(self, face_id: int) -> None:
        super().__init__(f"there is no face with id {face_id}")


class DuplicateExternalId(GalleryError):
    code = "duplicate_external_id"

    def __init__(self, external_id: str) -> None:
        super().__init__(f"another subject already has external id {external_id!r}")


class NoFaceFound(GalleryError):
    """A photo that had to show a face (verification) shows none."""

    code = "no_face_found"


class MultipleFacesFound(GalleryError):
    """A photo that had to show one face (verification) shows several."""

    code = "multiple_faces"


class ModelNotReady(GalleryError):
    """The model or the index is not loaded yet (start-up, or a failed load)."""

    code = "model_not_ready"


class FaceNotEmbedded(GalleryError):
    """A stored face has no embedding under the active model version (reindex pending)."""

    code = "face_not_embedded"

    def __init__(self, face_id: int) -> None:
        super().__init__(f"face {face_id} has no embedding under the active model version")


class ModelSwitched(GalleryError):
    """The model was switched again and again while a photo was being enrolled."""

    code = "model_switched"


class JobConflict(GalleryError):
    """Another reindex or retrain is queued or running; they would fight over the model."""

    code = "job_conflict"


class JobNotFound(GalleryError):
    code = "job_not_found"

    def __init__(self, job_id: int) -> None:
        super().__init__(f"there is no job with id {job_id}")


class JobFinished(GalleryError):
    """A job that already ended cannot be cancelled."""

    code = "job_finished"


class RetrainRefused(GalleryError):
    """A retrain cannot start: its data is missing or too small, or its name is taken."""

    code = "retrain_refused"


class OperationCancelled(Exception):
    """A long operation stopped between two steps because its caller asked it to."""
