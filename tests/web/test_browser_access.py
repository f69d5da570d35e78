"""Logins, roles, CSRF and the audit trail in a real headless Chromium against a real server.

An enroller logs in with a key and enrolls Emma Watson through the enroll page; an
investigator probes for her under a case reference; an admin finds that probe on the
audit page. A change posted without its CSRF token is refused; a viewer sees no enroll,
delete or admin controls; logging out ends the session.
"""

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from app.access.roles import Role

pytestmark = pytest.mark.browser

CASE = "OP-LANTERN/2025-0042"
PURPOSE = "CCTV still from the bus station, 14 March"


def lfw(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


@pytest.fixture(scope="module")
def emma(log_in_page: Callable[[Role], Page], faces_dir: Path) -> str:
    """Emma Watson enrolled through the enroll page by an enroller; her subject page URL."""
    page = log_in_page(Role.enroller)
    page.goto("/enroll")
    page.get_by_label("Name").fill("Emma Watson")
    page.locator("#photos").set_input_files([lfw(faces_dir, "Emma_Watson", n) for n in (1, 2)])
    page.get_by_role("button", name="Create subject and enroll").click()
    expect(page.locator("#outcomes li[data-status=enrolled]")).to_have_count(2)
    page.get_by_role("link", name="Open Emma Watson's page").click()
    expect(page.get_by_role("heading", name="Emma Watson")).to_be_visible()
    return page.url


def test_a_probe_is_found_on_the_audit_page_by_its_case(
    open_page: Callable[[Role], Page], emma: str, faces_dir: Path
) -> None:
    investigator = open_page(Role.investigator)
    investigator.goto("/probe")
    investigator.get_by_label("Probe photo").set_input_files(lfw(faces_dir, "Emma_Watson", 3))
    investigator.get_by_label("Case reference").fill(CASE)
    investigator.get_by_label("Purpose").fill(PURPOSE)
    investigator.get_by_role("button", name="Probe", exact=True).click()
    expect(investigator.locator("#probe-results[data-ready=true]")).to_be_visible()
    first = investigator.locator("#face-1 .candidate").first
    expect(first.locator(".name")).to_have_text("Emma Watson")

    admin = open_page(Role.admin)
    admin.goto("/admin")
    admin.get_by_role("link", name="read, export and check the audit trail").click()
    admin.get_by_label("Case reference").fill(CASE)
    admin.get_by_role("button", name="Show records").click()
    records = admin.locator("#audit-records tbody tr")
    expect(records).to_have_count(1)
    expect(records).to_have_attribute("data-action", "probe")
    expect(records).to_contain_text(CASE)
    expect(records).to_contain_text(PURPOSE)
    expect(records).to_contain_text("(investigator)")
    subject_id = emma.rstrip("/").rsplit("/", 1)[1]
    expect(records.get_by_role("link", name=subject_id, exact=True)).to_have_attribute(
        "href", f"/gallery/{subject_id}"
    )
    export = admin.locator("#audit-export")
    expect(export).to_have_attribute("href", re.compile(r"case_reference=OP-LANTERN%2F2025-0042"))
    admin.get_by_role("button", name="Check the trail").click()
    expect(admin.locator("#check-result")).to_have_attribute("data-intact", "true")
    expect(records).to_contain_text(CASE)  # the check keeps the filters


def test_a_change_without_its_csrf_token_is_refused(
    open_page: Callable[[Role], Page], expect_page_error: Callable[[str], None]
) -> None:
    page = open_page(Role.enroller)
    page.goto("/enroll")
    bare = page.evaluate(
        """async () => {
            const response = await fetch("/subjects", {
                method: "POST",
                headers: {"content-type": "application/json"},
                body: JSON.stringify({display_name: "Forged"}),
            });
            return {status: response.status, body: await response.json()};
        }"""
    )
    assert bare["status"] == 403 and bare["body"]["code"] == "csrf_failed"
    expect_page_error("status of 403")
    # The page's own helper adds the token from <meta name="csrf-token">.
    created = page.evaluate(
        """() => Lineup.request("/subjects", {
            method: "POST",
            headers: {"content-type": "application/json"},
            body: JSON.stringify({display_name: "Sent with its token"}),
        })"""
    )
    assert created["display_name"] == "Sent with its token"

    logout = page.request.post("/logout", form={"csrf_token": "not-the-token"})
    assert logout.status == 403 and 'data-code="csrf_failed"' in logout.text()
    page.goto("/gallery")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()  # still logged in


def test_a_viewer_sees_no_enroll_delete_or_admin_controls(
    open_page: Callable[[Role], Page], emma: str, expect_page_error: Callable[[str], None]
) -> None:
    viewer = open_page(Role.viewer)
    nav = viewer.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(["Gallery"])
    expect(viewer.get_by_role("link", name="Enroll a subject")).to_have_count(0)
    viewer.goto(emma)
    expect(viewer.get_by_role("img", name="Aligned face chip of Emma Watson")).to_have_count(2)
    expect(viewer.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)
    expect(viewer.get_by_role("link", name="Add photos")).to_have_count(0)
    expect(viewer.locator("#who")).to_contain_text("(viewer)")
    answer = viewer.goto("/admin")
    assert answer is not None and answer.status == 403
    expect(viewer.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect_page_error("status of 403")


def test_an_enroller_may_delete_faces_but_not_subjects(
    open_page: Callable[[Role], Page], emma: str
) -> None:
    enroller = open_page(Role.enroller)
    enroller.goto(emma)
    expect(enroller.get_by_role("button", name=re.compile("^Delete face"))).to_have_count(2)
    expect(enroller.get_by_role("button", name="Delete subject")).to_have_count(0)
    expect(enroller.get_by_role("link", name="Add photos")).to_be_visible()


def test_logging_out_ends_the_session(open_page: Callable[[Role], Page], live_server: str) -> None:
    page = open_page(Role.viewer)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{live_server}/login")
    page.goto("/gallery")
    expect(page).to_have_url(f"{live_server}/login?next=%2Fgallery")
    expect(page.get_by_label("API key")).to_be_visible()
