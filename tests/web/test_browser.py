"""The pages in a real headless Chromium against a real server: enroll, gallery, probe, admin.

Every page is logged in through the login page with a key. Three `lfw_mini`
people are enrolled through the enroll page; a fourth photo of one of them must
be named first on the probe page, and a stranger (a `deepface` person, not in
`lfw_mini`) must be shown as no match. The probe pages are saved as screenshots
(see `screenshots_dir`).
"""

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, Request, expect

from app.access.roles import Role

from access_support import bearer

pytestmark = pytest.mark.browser

PEOPLE = {"Tom_Hanks": "case-1/th", "Emma_Watson": "case-1/ew", "Heidi_Klum": "case-2/hk"}
STRANGER = ("deepface", "person_04", "img13.jpg")
LEADS = "Candidates are investigative leads for a person to review, never an identification."
MAX_SCREENSHOT_BYTES = 300_000
PHONE = {"width": 390, "height": 844}


def lfw(faces_dir: Path, person: str, number: int) -> Path:
    return faces_dir / "lfw_mini" / person / f"{person}_{number:04d}.jpg"


def save_screenshot(page: Page, path: Path) -> None:
    """A full-page PNG, reduced to a 256-colour palette if it is over the size budget."""
    data = page.screenshot(full_page=True)
    if len(data) > MAX_SCREENSHOT_BYTES:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        buffer = io.BytesIO()
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            buffer, format="PNG", optimize=True
        )
        data = buffer.getvalue()
    path.write_bytes(data)


@pytest.fixture(scope="module")
def enrolled(
    log_in_page: Callable[[Role], Page], faces_dir: Path, screenshots_dir: Path
) -> dict[str, list[tuple[str, str]]]:
    """Each person enrolled through the enroll page with photos 1–3: their (file, status)."""
    page = log_in_page(Role.enroller)
    outcomes = {}
    for person, external_id in PEOPLE.items():
        page.goto("/enroll")
        page.get_by_label("Name").fill(person.replace("_", " "))
        page.get_by_label("External id").fill(external_id)
        page.locator("#photos").set_input_files([lfw(faces_dir, person, n) for n in (1, 2, 3)])
        expect(page.locator("#photo-count")).to_have_text("3 photos chosen.")
        page.get_by_role("button", name="Create subject and enroll").click()
        expect(page.locator("#outcomes li")).to_have_count(3)
        outcomes[person] = [
            (item.locator(".filename").inner_text(), item.get_attribute("data-status") or "")
            for item in page.locator("#outcomes li").all()
        ]
        if person == "Tom_Hanks":  # the one with a refused photo: worth a picture
            save_screenshot(page, screenshots_dir / "enroll.png")
    return outcomes


def test_enroll_page_shows_each_photo_outcome(
    enrolled: dict[str, list[tuple[str, str]]],
) -> None:
    # Tom_Hanks_0001.jpg shows a second person: refused with its reason, the rest enrolled.
    assert enrolled["Tom_Hanks"] == [
        ("Tom_Hanks_0001.jpg", "refused"),
        ("Tom_Hanks_0002.jpg", "enrolled"),
        ("Tom_Hanks_0003.jpg", "enrolled"),
    ]
    for person in ("Emma_Watson", "Heidi_Klum"):
        assert [status for _, status in enrolled[person]] == ["enrolled"] * 3


def test_enroll_page_says_why_a_photo_was_refused(
    page: Page, enrolled: object, faces_dir: Path
) -> None:
    page.goto("/gallery")
    page.get_by_role("link", name="Tom Hanks").click()
    page.get_by_role("link", name="Add photos").first.click()
    page.locator("#photos").set_input_files([lfw(faces_dir, "Tom_Hanks", 1)])
    page.get_by_role("button", name="Enroll photos").click()
    refused = page.locator("#outcomes li[data-status=refused]")
    expect(refused).to_contain_text("it shows several faces")
    expect(refused.get_by_role("img", name="Uploaded photo Tom_Hanks_0001.jpg")).to_be_visible()


def test_gallery_shows_thumbnails_and_searches(
    page: Page, enrolled: object, screenshots_dir: Path
) -> None:
    page.goto("/")
    cards = page.locator(".subject-card")
    expect(cards).to_have_count(3)
    for name in ("Tom Hanks", "Emma Watson", "Heidi Klum"):
        thumbnail = page.get_by_role("img", name=f"Aligned face chip of {name}")
        expect(thumbnail).to_be_visible()
        # Visible is not loaded: wait (with Playwright's deadline) for the bytes to decode.
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
        )
        assert thumbnail.evaluate("img => img.naturalWidth") == 150
    save_screenshot(page, screenshots_dir / "gallery.png")
    page.get_by_label("Search by name or external id").fill("emma")
    page.keyboard.press("Enter")
    expect(cards).to_have_count(1)
    expect(cards).to_contain_text("Emma Watson")
    page.get_by_label("Search by name or external id").fill("case-2/hk")
    page.keyboard.press("Enter")
    expect(cards).to_contain_text("Heidi Klum")


def probe(page: Page, photo: Path, case_reference: str = "CASE-BROWSER-1") -> None:
    page.goto("/probe")
    page.get_by_label("Probe photo").set_input_files(photo)
    page.get_by_label("Case reference").fill(case_reference)
    page.get_by_role("button", name="Probe", exact=True).click()
    expect(page.locator("#probe-results[data-ready=true]")).to_be_visible()
    expect(page.locator(".face-box")).not_to_have_count(0)


def test_probe_names_the_right_person_first_and_rethresholds_in_place(
    page: Page, enrolled: object, faces_dir: Path, screenshots_dir: Path
) -> None:
    probes: list[Request] = []
    page.on("request", lambda request: probes.append(request) if request.method == "POST" else None)
    probe(page, lfw(faces_dir, "Tom_Hanks", 4))
    expect(page.locator("#leads-statement")).to_contain_text(LEADS)
    face = page.locator("#face-1")
    expect(face).to_have_attribute("data-decision", "match")
    first = face.locator(".candidate").first
    expect(first.locator(".name")).to_have_text("Tom Hanks")
    expect(first.locator(".verdict")).to_have_text("match")
    expect(first.get_by_role("img", name="Aligned face chip of Tom Hanks")).to_be_visible()
    expect(face.locator(".candidate")).to_have_count(3)  # k = 5, three subjects
    expect(page.locator(".face-box")).to_have_count(1)
    expect(page.locator("#probe-summary")).to_have_text(
        "1 face found: 1 match, 0 no match, at threshold 0.928."
    )
    save_screenshot(page, screenshots_dir / "probe-match.png")
    page.set_viewport_size(PHONE)
    save_screenshot(page, screenshots_dir / "probe-match-phone.png")

    page.get_by_label("Match threshold, as a number").fill("0.99")
    page.get_by_label("Match threshold, as a number").press("Enter")
    expect(face).to_have_attribute("data-decision", "no_match")
    expect(face.locator(".decision-text")).to_contain_text("No match")
    page.get_by_role("button", name="Reset").click()
    expect(face).to_have_attribute("data-decision", "match")
    page.get_by_label("Match threshold (cosine similarity)").focus()
    page.keyboard.press("End")  # the slider works from the keyboard too
    expect(face).to_have_attribute("data-decision", "no_match")
    assert [request.url.split("?")[0][-6:] for request in probes] == ["/probe"]


def test_probe_of_a_stranger_says_no_match(
    page: Page, enrolled: object, faces_dir: Path, screenshots_dir: Path
) -> None:
    probe(page, faces_dir.joinpath(*STRANGER))
    face = page.locator("#face-1")
    expect(face).to_have_attribute("data-decision", "no_match")
    expect(face.locator(".decision-text")).to_contain_text(
        "No match: no gallery face is similar enough."
    )
    expect(page.locator("#probe-summary")).to_contain_text("0 matches, 1 no match")
    expect(face.locator(".candidate.above")).to_have_count(0)
    save_screenshot(page, screenshots_dir / "probe-no-match.png")


def test_probe_shows_the_api_refusal(
    page: Page, tmp_path: Path, expect_page_error: Callable[[str], None]
) -> None:
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("this is not an image")
    page.goto("/probe")
    page.get_by_label("Probe photo").set_input_files(not_a_photo)
    page.get_by_label("Case reference").fill("CASE-BROWSER-2")
    page.get_by_role("button", name="Probe", exact=True).click()
    expect(page.locator("#probe-status")).to_have_attribute("data-kind", "error")
    expect(page.locator("#probe-status")).to_have_text(
        "the file is not an image format Lineup can read"
    )
    expect(page.locator("#probe-results")).to_be_hidden()
    expect_page_error("Failed to load resource")


def test_the_probe_page_asks_for_the_case_first(
    page: Page, enrolled: object, faces_dir: Path
) -> None:
    probes: list[Request] = []
    page.on("request", lambda request: probes.append(request) if request.method == "POST" else None)
    page.goto("/probe")
    page.get_by_label("Probe photo").set_input_files(lfw(faces_dir, "Tom_Hanks", 4))
    page.get_by_role("button", name="Probe", exact=True).click()
    expect(page.locator("#probe-status")).to_have_text(
        "Enter the case reference this search is for."
    )
    expect(page.get_by_label("Case reference")).to_be_focused()
    assert probes == []


def test_deleting_asks_first(
    page: Page, enrolled: object, live_server: str, live_key: Callable[[Role], str]
) -> None:
    page.goto("/gallery?q=Heidi")
    page.get_by_role("link", name="Heidi Klum").click()
    chips = page.get_by_role("img", name="Aligned face chip of Heidi Klum")
    expect(chips).to_have_count(3)
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete face").first.click()
    expect(chips).to_have_count(3)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete face").first.click()
    expect(chips).to_have_count(2)

    admin = bearer(live_key(Role.admin))
    extra = httpx.post(
        f"{live_server}/subjects", json={"display_name": "Passer-by"}, headers=admin
    ).json()
    page.goto(f"/gallery/{extra['id']}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete subject").click()
    expect(page).to_have_url(f"{live_server}/gallery")
    assert httpx.get(f"{live_server}/subjects/{extra['id']}", headers=admin).status_code == 404


@pytest.mark.parametrize("path", ["/gallery", "/enroll", "/probe", "/admin"])
def test_pages_are_keyboard_usable_with_labels_and_alt_texts(
    page: Page, enrolled: object, path: str
) -> None:
    page.goto(path)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    assert page.eval_on_selector_all("img", "imgs => imgs.filter(i => !i.alt).length") == 0
    unlabelled = page.eval_on_selector_all(
        "input:not([type=hidden]), select, textarea",
        "fields => fields.filter(f => !f.labels.length && !f.ariaLabel).map(f => f.id)",
    )
    assert unlabelled == []


def test_admin_follows_a_job_and_shows_refusals(
    page: Page,
    enrolled: object,
    expect_page_error: Callable[[str], None],
    screenshots_dir: Path,
) -> None:
    page.goto("/admin")
    expect(page.locator(".model-card summary").first).to_have_text("dlib-resnet")
    expect(page.locator(".model-card").first).to_contain_text("0.927778")
    expect(page.locator(".backbones")).to_contain_text("facenet-vggface2")
    expect(page.get_by_text("lineup evaluate --report DIR")).to_be_visible()

    # Reindexing onto the active model is refused at once, and nothing is queued.
    page.get_by_role("button", name="Start reindex").click()
    reindex_status = page.locator("#reindex-form [data-form-status]")
    expect(reindex_status).to_contain_text("already the active model")
    expect_page_error("status of 409")
    expect(page.locator("#jobs-body tr[data-status=queued]")).to_have_count(0)
    save_screenshot(page, screenshots_dir / "admin.png")

    # The API refuses a retrain on too few identities (no subject has 4 faces): its detail shows.
    retrain_status = page.locator("#retrain-form [data-form-status]")
    page.get_by_label("New model name").fill("cctv-v1")
    page.get_by_role("button", name="Start retrain").click()
    expect(retrain_status).to_contain_text("training needs at least 2")
    expect_page_error("status of 422")

    # A server without the retrain endpoint: its error shows in the form, the page carries on.
    page.route(
        "**/admin/retrain",
        lambda route: route.fulfill(status=404, json={"detail": "Not Found", "code": "not_found"}),
    )
    page.get_by_role("button", name="Start retrain").click()
    expect(retrain_status).to_contain_text("does not offer /admin/retrain yet (404: Not Found)")
    expect_page_error("status of 404")
