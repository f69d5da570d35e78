"""The case a search is for: `case_reference` (required) and `purpose`, from the form or
the query string, so a multipart upload and a scripted call can both say it."""

from typing import Annotated

from fastapi import Form, Query
from pydantic import AfterValidator

from app.audit.actor import Case
from app.schemas import plain_text

CASE_HELP = (
    "The case this search is for (1-200 characters): recorded with the search in the audit "
    "trail. Required; a form field or a query parameter."
)
PURPOSE_HELP = "Why this search is run, in a few words; recorded in the audit trail."
CaseText = Annotated[str, AfterValidator(plain_text)]


def _printable(value: str) -> str:
    """Free text may run over lines, but holds no other control character."""
    if any(ord(char) < 32 and char not in "\n\r\t" for char in value) or "\x7f" in value:
        raise ValueError("must not contain control characters other than line breaks and tabs")
    return value


PurposeText = Annotated[str, AfterValidator(_printable)]


class CaseMissing(Exception):
    code = "case_reference_required"


def search_case(
    case_form: Annotated[
        CaseText | None,
        Form(alias="case_reference", min_length=1, max_length=200, description=CASE_HELP),
    ] = None,
    case_query: Annotated[
        CaseText | None,
        Query(alias="case_reference", min_length=1, max_length=200, description=CASE_HELP),
    ] = None,
    purpose_form: Annotated[
        PurposeText | None, Form(alias="purpose", max_length=1000, description=PURPOSE_HELP)
    ] = None,
    purpose_query: Annotated[
        PurposeText | None, Query(alias="purpose", max_length=1000, description=PURPOSE_HELP)
    ] = None,
) -> Case:
    """The search's case; `CaseMissing` (422) without a reference, or with two that differ."""
    if case_form is not None and case_query is not None and case_form != case_query:
        raise CaseMissing(
            "case_reference is given twice, as a form field and a query "
            "parameter, with different values"
        )
    reference = case_form if case_form is not None else case_query
    if reference is None:
        raise CaseMissing(
            "a search needs a case_reference (form field or query parameter, 1-200 "
            "characters): every probe and verify is recorded against its case"
        )
    return Case(reference=reference, purpose=purpose_form or purpose_query)
