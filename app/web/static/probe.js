// The probe page: send the photo once, draw a numbered box on each face, list each
// face's candidates, and re-flag matches in the browser when the threshold moves.
"use strict";

(() => {
  const { request, el, showStatus } = Lineup;
  const form = document.getElementById("probe-form");
  const input = document.getElementById("probe-photo");
  const status = document.getElementById("probe-status");
  const results = document.getElementById("probe-results");
  const frame = document.getElementById("probe-photo-frame");
  const facesNode = document.getElementById("probe-faces");
  const summary = document.getElementById("probe-summary");
  const range = document.getElementById("threshold-range");
  const number = document.getElementById("threshold-number");
  const reset = document.getElementById("threshold-reset");
  const submit = document.getElementById("probe-submit");
  // The calibrated threshold has more digits than the slider's step: keep it exact here,
  // so the page flags candidates exactly as the API does.
  const defaultThreshold = Number(range.dataset.default);
  let current = defaultThreshold;
  let answer = null;
  let photoUrl = null;

  const fmt = (value) => value.toFixed(3);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  function threshold() {
    return current;
  }

  // Boxes are placed in percent of the photo, so they follow the image when it scales.
  function drawPhoto(file) {
    if (photoUrl) URL.revokeObjectURL(photoUrl);
    photoUrl = URL.createObjectURL(file);
    const n = answer.faces.length;
    const img = el("img", {
      src: photoUrl,
      alt: `Probe photo ${file.name}, with ${plural(n, "numbered face box")}`,
      id: "probe-image",
    });
    frame.replaceChildren(img);
    img.addEventListener("load", () => {
      const w = img.naturalWidth;
      const h = img.naturalHeight;
      answer.faces.forEach((face, i) => {
        const x1 = Math.max(0, face.box.x1), y1 = Math.max(0, face.box.y1);
        const x2 = Math.min(w, face.box.x2), y2 = Math.min(h, face.box.y2);
        const box = el("a", {
          class: "face-box",
          href: `#face-${i + 1}`,
          "data-face": i,
          "aria-label": `Face ${i + 1}: go to its candidates`,
          style: {
            left: `${(100 * x1) / w}%`,
            top: `${(100 * y1) / h}%`,
            width: `${(100 * (x2 - x1)) / w}%`,
            height: `${(100 * (y2 - y1)) / h}%`,
          },
        }, [el("span", { class: "face-number", text: String(i + 1) })]);
        frame.append(box);
      });
      update();
    }, { once: true });
  }

  function candidateItem(candidate) {
    const name = candidate.subject.display_name;
    const similarity = Math.max(0, Math.min(1, candidate.similarity));
    return el("li", { class: "candidate", "data-similarity": candidate.similarity }, [
      el("span", { class: "rank", text: `#${candidate.rank}` }),
      el("img", {
        class: "chip",
        src: `/faces/${candidate.face_id}/chip`,
        alt: `Aligned face chip of ${name}`,
        width: 150,
        height: 150,
      }),
      el("a", { class: "name", href: `/gallery/${candidate.subject.id}`, text: name }),
      candidate.subject.external_id
        ? el("span", { class: "meta", text: candidate.subject.external_id })
        : null,
      el("span", { class: "similarity" }, [
        "similarity ",
        el("strong", { class: "similarity-value", text: fmt(candidate.similarity) }),
      ]),
      el("span", { class: "bar", "aria-hidden": "true" }, [
        el("span", { class: "fill", style: { width: `${100 * similarity}%` } }),
        el("span", { class: "tick" }),
      ]),
      el("span", { class: "badge verdict" }),
    ]);
  }

  function faceSection(face, i) {
    return el("section", { class: "probe-face", id: `face-${i + 1}`, tabindex: "-1" }, [
      el("h3", {}, [
        el("span", { class: "face-number", text: String(i + 1) }),
        ` Face ${i + 1} `,
        el("span", { class: "badge decision" }),
      ]),
      el("p", { class: "decision-text" }),
      el("p", { class: "meta", text: `detection probability ${fmt(face.detection_probability)}` }),
      face.candidates.length
        ? el("ol", { class: "candidates", "aria-label": `Candidates for face ${i + 1}` },
            face.candidates.map(candidateItem))
        : null,
    ]);
  }

  function decisionText(face, limit) {
    if (face.decision === "too_small") return `Not searched: ${face.detail}.`;
    const best = face.candidates[0];
    if (!best) return "No match: the gallery has no enrolled face to compare with.";
    if (best.similarity >= limit) {
      const n = face.candidates.filter((c) => c.similarity >= limit).length;
      return `Match: ${best.subject.display_name} at ${fmt(best.similarity)}` +
        (n > 1 ? ` (${plural(n, "candidate")} at or above ${fmt(limit)}).` : ` (threshold ${fmt(limit)}).`);
    }
    return `No match: no gallery face is similar enough. The nearest, ` +
      `${best.subject.display_name} at ${fmt(best.similarity)}, is below the threshold ${fmt(limit)}.`;
  }

  // Re-flag every candidate, face and box for the current threshold; no request.
  function update() {
    if (!answer) return;
    const limit = threshold();
    let matches = 0;
    facesNode.querySelectorAll(".probe-face").forEach((section, i) => {
      const face = answer.faces[i];
      const matched = face.candidates.length > 0 && face.candidates[0].similarity >= limit;
      matches += matched ? 1 : 0;
      const tooSmall = face.decision === "too_small";
      section.dataset.decision = tooSmall ? "too_small" : matched ? "match" : "no_match";
      const badge = section.querySelector(".decision");
      badge.textContent = tooSmall ? "too small" : matched ? "match" : "no match";
      badge.className = `badge decision ${matched ? "match" : "no-match"}`;
      section.querySelector(".decision-text").textContent = decisionText(face, limit);
      section.querySelectorAll(".candidate").forEach((item) => {
        const above = Number(item.dataset.similarity) >= limit;
        item.classList.toggle("above", above);
        const verdict = item.querySelector(".verdict");
        verdict.textContent = above ? "match" : "no match";
        verdict.className = `badge verdict ${above ? "match" : "no-match"}`;
        item.querySelector(".tick").style.left = `${100 * Math.max(0, Math.min(1, limit))}%`;
      });
      const box = frame.querySelector(`.face-box[data-face="${i}"]`);
      if (box) box.classList.toggle("match", matched);
    });
    const n = answer.faces.length;
    summary.textContent = n
      ? `${plural(n, "face")} found: ${matches} match${matches === 1 ? "" : "es"}, ` +
        `${n - matches} no match, at threshold ${fmt(limit)}.`
      : "No face was found in this photo, so there is nothing to compare.";
    summary.dataset.matches = String(matches);
  }

  function setThreshold(value) {
    current = Math.max(0, Math.min(1, Number.isFinite(value) ? value : defaultThreshold));
    range.value = String(current);
    number.value = String(Number(current.toFixed(6)));
    update();
  }

  range.addEventListener("input", () => setThreshold(Number(range.value)));
  number.addEventListener("change", () => setThreshold(Number(number.value)));
  reset.addEventListener("click", () => setThreshold(defaultThreshold));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) {
      showStatus(status, "Choose a photo to probe.", "error");
      input.focus();
      return;
    }
    const caseReference = form.elements.case_reference.value.trim();
    if (!caseReference) {
      showStatus(status, "Enter the case reference this search is for.", "error");
      form.elements.case_reference.focus();
      return;
    }
    const k = Math.max(1, Math.min(100, Number(form.elements.k.value) || 5));
    const body = new FormData();
    body.append("image", file, file.name);
    body.append("case_reference", caseReference);
    const purpose = form.elements.purpose.value.trim();
    if (purpose) body.append("purpose", purpose);
    submit.disabled = true;
    delete results.dataset.ready;
    showStatus(status, "Searching the gallery…", "busy");
    try {
      answer = await request(`/probe?k=${k}`, { method: "POST", body });
      facesNode.replaceChildren(...answer.faces.map(faceSection));
      results.hidden = false;
      drawPhoto(file);
      update();
      showStatus(status, `Probed ${file.name} with ${answer.model_version.backbone}.`, "ok");
      results.dataset.ready = "true";
    } catch (error) {
      showStatus(status, error.message, "error");
    } finally {
      submit.disabled = false;
    }
  });
})();
