// The enroll page: create the subject (unless adding to one), send every photo in one
// request, and show each photo's outcome beside its thumbnail.
"use strict";

(() => {
  const { request, el, showStatus } = Lineup;
  const form = document.getElementById("enroll-form");
  const photos = document.getElementById("photos");
  const count = document.getElementById("photo-count");
  const status = document.getElementById("enroll-status");
  const results = document.getElementById("enroll-results");
  const outcomes = document.getElementById("outcomes");
  const next = document.getElementById("enroll-next");
  const submit = document.getElementById("enroll-submit");
  const reasons = {
    no_face: "no face was found",
    multiple_faces: "it shows several faces",
    face_too_small: "the face is too small",
    low_confidence: "the face detection is not confident enough",
    unreadable: "the file is not a readable image",
    too_large: "the file or image is too large",
  };

  photos.addEventListener("change", () => {
    const n = photos.files.length;
    count.textContent = n ? `${n} photo${n === 1 ? "" : "s"} chosen.` : "No photo chosen.";
  });

  async function subjectFor(data) {
    const existing = form.elements.subject_id;
    if (existing) return { id: Number(existing.value), display_name: existing.dataset.name };
    const body = { display_name: data.get("display_name").trim() };
    const externalId = data.get("external_id").trim();
    const notes = data.get("notes").trim();
    if (externalId) body.external_id = externalId;
    if (notes) body.details = { notes };
    return request("/subjects", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  function outcomeItem(outcome, file) {
    const refused = outcome.status === "refused";
    const label = { enrolled: "Enrolled", duplicate: "Duplicate", refused: "Refused" }[outcome.status];
    const why = refused
      ? `${reasons[outcome.reason] || outcome.reason}${outcome.detail ? ` (${outcome.detail})` : ""}`
      : outcome.status === "duplicate"
        ? "this photo is already enrolled"
        : `quality ${outcome.face && outcome.face.quality !== null ? outcome.face.quality.toFixed(2) : "—"}`;
    const thumbnail = file
      ? el("img", { src: URL.createObjectURL(file), alt: `Uploaded photo ${outcome.filename}`, class: "thumb" })
      : el("span", { class: "thumb placeholder", text: "?" });
    return el("li", { class: `outcome ${outcome.status}`, "data-status": outcome.status }, [
      thumbnail,
      el("div", {}, [
        el("span", { class: "filename", text: outcome.filename }),
        el("span", { class: `badge ${outcome.status}`, text: label }),
        el("span", { class: "why", text: why }),
      ]),
    ]);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    if (!form.elements.subject_id && !data.get("display_name").trim()) {
      showStatus(status, "Enter the subject's name.", "error");
      form.elements.display_name.focus();
      return;
    }
    if (!photos.files.length) {
      showStatus(status, "Choose at least one photo.", "error");
      photos.focus();
      return;
    }
    submit.disabled = true;
    showStatus(status, `Enrolling ${photos.files.length} photo(s)…`, "busy");
    let subject = null;
    try {
      subject = await subjectFor(data);
      const upload = new FormData();
      for (const file of photos.files) upload.append("files", file, file.name);
      const face = encodeURIComponent(data.get("face"));
      const answer = await request(`/subjects/${subject.id}/photos?face=${face}`, {
        method: "POST",
        body: upload,
      });
      const files = new Map(Array.from(photos.files, (file) => [file.name, file]));
      outcomes.replaceChildren(...answer.photos.map((o) => outcomeItem(o, files.get(o.filename))));
      results.hidden = false;
      const refused = answer.photos.length - answer.enrolled;
      showStatus(
        status,
        `${answer.enrolled} of ${answer.photos.length} photo(s) enrolled for ${subject.display_name}` +
          (refused ? `; ${refused} not enrolled (see below).` : "."),
        answer.enrolled ? "ok" : "error",
      );
      form.reset();
      photos.dispatchEvent(new Event("change"));
    } catch (error) {
      showStatus(status, error.message, "error");
    } finally {
      submit.disabled = false;
      if (subject) {
        next.replaceChildren(
          el("a", { href: `/gallery/${subject.id}`, text: `Open ${subject.display_name}'s page` }),
          " · ",
          el("a", { href: "/enroll", text: "Enroll another subject" }),
        );
        results.hidden = false;
      }
    }
  });
})();
