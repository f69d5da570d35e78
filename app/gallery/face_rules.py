"""When a detected face is too small to use: one rule for probing and for enrollment.

A face's size is its box's smaller side, in the photo's pixels. Probing sets
aside faces under `LINEUP_MIN_FACE_SIZE` and enrollment refuses faces under the
stricter `LINEUP_MIN_ENROLL_FACE_SIZE`; both ask `too_small_reason`, each with
its own minimum, so the two can only differ in that number.
"""

from app.vision.detection import Detection


def face_side(detection: Detection) -> float:
    """The face's size: its box's smaller side, in photo pixels."""
    return min(detection.box.width, detection.box.height)


def too_small_reason(detection: Detection, *, min_side: int) -> str | None:
    """Why `detection` is too small to use (its smaller side is under `min_side` px), or None."""
    side = face_side(detection)
    if side >= min_side:
        return None
    return f"the face is {side:.1f} px; at least {min_side} px is needed"
