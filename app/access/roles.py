"""The four roles and what each may do.

Roles are not a ladder: an investigator searches but never changes the
gallery, an enroller changes the gallery but never searches it, and both may
read it. Only an admin deletes subjects, runs jobs, manages keys and reads or
trims the audit trail.
"""

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    investigator = "investigator"
    enroller = "enroller"
    admin = "admin"


GRANTS: dict[Role, frozenset[Role]] = {
    Role.viewer: frozenset({Role.viewer}),
    Role.investigator: frozenset({Role.viewer, Role.investigator}),
    Role.enroller: frozenset({Role.viewer, Role.enroller}),
    Role.admin: frozenset(Role),
}
"""For each role, the route requirements it meets."""

WHAT_EACH_MAY_DO: dict[Role, str] = {
    Role.viewer: "read subjects, faces, chips and stats",
    Role.investigator: "what a viewer may, and probe and verify",
    Role.enroller: "what a viewer may, and create and change subjects, enroll photos, delete faces",
    Role.admin: "everything: also delete subjects, run and cancel jobs, manage keys, read "
    "and trim the audit trail",
}


def may(role: Role | str, needed: Role) -> bool:
    """Whether a key with `role` may use a route that needs `needed`."""
    return needed in GRANTS[Role(role)]
