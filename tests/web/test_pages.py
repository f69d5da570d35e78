"""The pages through `TestClient`: status codes, what the HTML says, and reports served safely.

The browser tests (`test_browser.py`) check what the scripts do; these check
what the server renders, fast and without Chromium.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.vision.embedder import FaceEmbedder
from app.web.reports import list_reports, report_file
from app.web.templating import LEADS_STATEMENT, TEMPLATES

from access_support import authorize

REPORT = "celeba-val"
MODELS = Path(__file__).resolve().parents[2] / "models"
CHECKPOINTS = shutil.ignore_patterns("epoch_*.pt")  # resumable states, not needed to serve


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, models_dir=MODELS, device="cpu")


@pytest.fixture(scope="module")
def subject(client: TestClient, faces_dir: Path) -> dict[str, object]:
    """Emma Watson with two enrolled photos, and a name that tries to be markup."""
    created = client.post(
        "/subjects",
        json={
            "display_name": "Emma Watson",
            "external_id": "case-7/ew",
            "details": {"notes": "<script>alert(1)</script>", "seen": ["Oxford", "London"]},
        },
    ).json()
    photos = [
        ("files", (name, (faces_dir / "lfw_mini" / "Emma_Watson" / name).read_bytes()))
        for name in ("Emma_Watson_0001.jpg", "Emma_Watson_0002.jpg")
    ]
    answer = client.post(f"/subjects/{created['id']}/photos", files=photos).json()
    assert answer["enrolled"] == 2
    return created


@pytest.fixture(scope="module")
def report(web_data_dir: Path) -> Path:
    """A report folder as `lineup evaluate --report` writes one, and a secret beside it."""
    folder = web_data_dir / "reports" / REPORT
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<h1>Evaluation</h1><img src='roc.png' alt='ROC'>")
    (folder / "roc.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "notes.db").write_bytes(b"not a report file")
    (web_data_dir / "secret.txt").write_text("outside the report")
    os.symlink(web_data_dir / "secret.txt", folder / "link.txt")
    return folder


def test_home_leads_to_the_gallery(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/gallery"


def test_gallery_shows_each_subject_with_its_first_chip(
    client: TestClient, subject: dict[str, object]
) -> None:
    faces = client.get(f"/subjects/{subject['id']}/faces").json()
    html = client.get("/gallery").text
    assert f'src="/faces/{faces[0]["id"]}/chip" alt="Aligned face chip of Emma Watson"' in html
    assert f'href="/gallery/{subject["id"]}"' in html
    assert "case-7/ew · 2 faces" in html
    assert LEADS_STATEMENT in html


def test_gallery_searches_and_pages(client: TestClient, subject: dict[str, object]) -> None:
    for number in range(30):
        client.post("/subjects", json={"display_name": f"Walk-in {number:02d}"})
    first = client.get("/gallery", params={"q": "walk-in"}).text
    assert first.count('class="subject-card"') == 24
    assert "Subjects 1–24 of 30" in first
    assert 'href="/gallery?q=walk-in&amp;page=2"' in first
    second = client.get("/gallery", params={"q": "walk-in", "page": 2}).text
    assert second.count('class="subject-card"') == 6
    assert "Walk-in 29" in second and "Emma Watson" not in second
    by_id = client.get("/gallery", params={"q": "case-7/ew"}).text
    assert by_id.count('class="subject-card"') == 1 and "Emma Watson" in by_id
    none = client.get("/gallery", params={"q": "nobody"}).text
    assert "No subject matches “nobody”." in none
    assert client.get("/gallery", params={"page": 0}).status_code == 422


def test_subject_page_lists_metadata_and_every_chip_with_confirmed_deletes(
    client: TestClient, subject: dict[str, object]
) -> None:
    faces = client.get(f"/subjects/{subject['id']}/faces").json()
    html = client.get(f"/gallery/{subject['id']}").text
    assert "<h1>Emma Watson</h1>" in html
    assert "<dd>case-7/ew</dd>" in html
    assert '<ol class="json"><li>Oxford</li><li>London</li></ol>' in html
    for face in faces:
        assert f'src="/faces/{face["id"]}/chip"' in html
        assert f'data-delete="/faces/{face["id"]}"' in html
    assert html.count("data-confirm=") == len(faces) + 1  # each face, and the subject
    # What users typed reaches the page as text, never as markup.
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_unknown_subject_is_an_html_404(client: TestClient) -> None:
    for path in ("/gallery/999999", "/enroll?subject=999999"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "there is no subject with id 999999" in answer.text


def test_enroll_page_has_a_labelled_multi_photo_input(
    client: TestClient, subject: dict[str, object]
) -> None:
    html = client.get("/enroll").text
    assert '<label for="display_name">' in html
    photos = re.search(r'<input id="photos"[^>]*>', html)
    assert photos is not None and 'type="file"' in photos[0] and " multiple" in photos[0]
    more = client.get(f"/enroll?subject={subject['id']}").text
    assert "Add photos of Emma Watson" in more
    assert 'id="display_name"' not in more


def test_probe_page_states_that_candidates_are_leads_and_starts_at_the_threshold(
    client: TestClient,
) -> None:
    html = client.get("/probe").text
    assert f"<strong>{LEADS_STATEMENT}</strong>" in html
    assert 'data-default="0.927778"' in html  # models/dlib-resnet/card.json's calibration
    assert 'src="/static/probe.js"' in html


def test_probe_page_asks_for_the_case_and_a_purpose(client: TestClient) -> None:
    html = client.get("/probe").text
    case = re.search(r'<input id="probe-case"[^>]*>', html)
    assert case is not None
    assert 'name="case_reference"' in case[0] and " required" in case[0]
    assert 'maxlength="200"' in case[0]
    assert '<label for="probe-case">Case reference' in html
    assert re.search(r'<input id="probe-purpose" name="purpose"', html)


def test_admin_page_lists_jobs_models_cards_and_reports(client: TestClient, report: Path) -> None:
    html = client.get("/admin").text
    assert "No job has run yet." in html
    for backbone in ("dlib-resnet", "facenet-vggface2", "facenet-casia"):
        assert f"<strong>{backbone}</strong>" in html
    assert "needs LINEUP_FACENET_VGGFACE2_WEIGHTS" in html
    assert "<summary>dlib-resnet</summary>" in html
    assert "<dt>target false match rate</dt>" in html and "<dd>0.927778</dd>" in html
    assert f'<a href="/reports/{REPORT}/">{REPORT}</a>' in html
    assert 'id="reindex-form"' in html and 'id="retrain-form"' in html
    assert '<a href="/audit" id="audit-link">' in html


def test_the_reindex_form_offers_exactly_the_models_a_reindex_can_load(
    tmp_path: Path, embedder: FaceEmbedder
) -> None:
    """Built-ins and folders holding weights; a folder with only a card is not a model."""
    models = tmp_path / "models"
    shutil.copytree(MODELS / "dlib-resnet", models / "dlib-resnet")
    shutil.copytree(MODELS / "dlib-resnet-cctv", models / "dlib-resnet-cctv", ignore=CHECKPOINTS)
    (models / "card-only").mkdir()
    (models / "card-only" / "card.json").write_text("{}")
    settings = Settings(data_dir=tmp_path / "data", models_dir=models, device="cpu")
    with TestClient(create_app(settings, embedder=embedder)) as fresh:
        html = authorize(fresh).get("/admin").text
    form = html[html.index('id="reindex-backbone"') :]
    offered = re.findall(r'<option value="([^"]+)"', form[: form.index("</select>")])
    built_in = ["dlib-resnet", "edgeface-xs", "edgeface-xxs", "facenet-casia", "facenet-vggface2"]
    assert offered == [*built_in, "dlib-resnet-cctv"]


def test_admin_page_says_how_to_make_a_report_when_there_is_none(
    tmp_path: Path, embedder: FaceEmbedder
) -> None:
    with TestClient(create_app(settings_for(tmp_path), embedder=embedder)) as fresh:
        assert "lineup evaluate --report DIR" in authorize(fresh).get("/admin").text


def test_reports_are_served_read_only(client: TestClient, report: Path) -> None:
    assert client.get(f"/reports/{REPORT}", follow_redirects=False).status_code == 307
    index = client.get(f"/reports/{REPORT}/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "<h1>Evaluation</h1>" in index.text
    figure = client.get(f"/reports/{REPORT}/roc.png")
    assert figure.headers["content-type"] == "image/png"
    assert figure.headers["x-content-type-options"] == "nosniff"
    assert client.post(f"/reports/{REPORT}/index.html").status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        f"/reports/{REPORT}/..%2F..%2Fsecret.txt",
        f"/reports/{REPORT}/%2e%2e/%2e%2e/secret.txt",
        f"/reports/{REPORT}/..%5C..%5Csecret.txt",
        f"/reports/{REPORT}/%2Fetc%2Fpasswd",
        f"/reports/{REPORT}/link.txt",  # a symbolic link to a file outside the report
        f"/reports/{REPORT}/notes.db",  # not a kind of file a report is made of
        f"/reports/{REPORT}/missing.png",
        "/reports/..%2F..%2Fetc/passwd",
        "/reports/.hidden/index.html",
    ],
)
def test_report_paths_cannot_climb_out(client: TestClient, report: Path, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert "outside the report" not in answer.text


def test_report_lookup_refuses_what_is_not_inside_the_report(report: Path) -> None:
    data_dir = report.parents[1]
    assert report_file(data_dir, REPORT, "roc.png") == (report / "roc.png").resolve()
    for name, relative in [
        (REPORT, "../../secret.txt"),
        (REPORT, "/etc/passwd"),
        (REPORT, "link.txt"),
        (REPORT, ""),
        ("..", "reports/celeba-val/index.html"),
        (REPORT, "roc.png\x00.html"),
    ]:
        assert report_file(data_dir, name, relative) is None, (name, relative)
    assert [found.name for found in list_reports(data_dir)] == [REPORT]


def test_static_files_are_served(client: TestClient) -> None:
    css = client.get("/static/lineup.css")
    assert css.status_code == 200 and ":focus-visible" in css.text
    for script in ("common.js", "enroll.js", "probe.js", "admin.js"):
        assert client.get(f"/static/{script}").status_code == 200


INLINE_CODE = {
    "an inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "a style element": re.compile(r"<style\b", re.IGNORECASE),
    "a style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "an event handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES.env.list_templates()))
def test_templates_hold_no_inline_code_the_policy_would_refuse(template: str) -> None:
    """The Content-Security-Policy allows scripts and styles from /static only."""
    assert TEMPLATES.env.loader is not None
    source = TEMPLATES.env.loader.get_source(TEMPLATES.env, template)[0]
    found = [what for what, pattern in INLINE_CODE.items() if pattern.search(source)]
    assert found == [], f"{template} holds {', '.join(found)}"


def test_the_scripts_set_no_style_attribute_as_text() -> None:
    """`el(..., {style: "..."})` would write a style attribute, which the policy refuses;
    styles are set through the element's `style` object."""
    static = Path(__file__).resolve().parents[2] / "app" / "web" / "static"
    for script in static.glob("*.js"):
        source = script.read_text()
        assert not re.search(r"style:\s*`", source), script.name
        assert 'setAttribute("style"' not in source, script.name
        assert "innerHTML" not in source, script.name
