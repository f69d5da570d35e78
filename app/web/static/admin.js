// The admin page: jobs with live progress (polled while one is queued or running),
// and the reindex and retrain forms, which show the API's refusals as they are.
"use strict";

(() => {
  const { request, el, showStatus } = Lineup;
  const body = document.getElementById("jobs-body");
  const jobsStatus = document.getElementById("jobs-status");
  const POLL_MS = 1500;
  let timer = null;

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
  const active = (job) => job.status === "queued" || job.status === "running";

  function jobRow(job) {
    const cancel = active(job)
      ? el("button", {
          type: "button",
          class: "secondary small",
          "data-cancel": job.id,
          "aria-label": `Cancel job ${job.id}`,
          text: "Cancel",
        })
      : null;
    return el("tr", { "data-job": job.id, "data-status": job.status }, [
      el("td", { text: job.id }),
      el("td", { text: job.kind }),
      el("td", {}, [el("span", { class: `badge ${job.status}`, text: job.status })]),
      el("td", {}, [
        el("progress", { max: 1, value: job.progress, "aria-label": `Progress of job ${job.id}` },
          [`${Math.round(job.progress * 100)} %`]),
      ]),
      el("td", { text: job.error || job.message }),
      el("td", { text: when(job.finished_at) }),
      el("td", {}, [cancel]),
    ]);
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const jobs = await request("/admin/jobs?limit=20");
      body.replaceChildren(...(jobs.length
        ? jobs.map(jobRow)
        : [el("tr", { class: "empty-row" }, [el("td", { colspan: 7, text: "No job has run yet." })])]));
      const running = jobs.some(active);
      showStatus(jobsStatus, running ? "Updating while a job runs…" : "", "info");
      if (running) timer = setTimeout(refresh, POLL_MS);
    } catch (error) {
      showStatus(jobsStatus, error.message, "error");
      timer = setTimeout(refresh, POLL_MS * 4);
    }
  }

  body.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-cancel]");
    if (!button || !window.confirm(`Cancel job ${button.dataset.cancel}?`)) return;
    button.disabled = true;
    try {
      await request(`/admin/jobs/${button.dataset.cancel}/cancel`, { method: "POST" });
    } catch (error) {
      showStatus(jobsStatus, error.message, "error");
    }
    refresh();
  });

  // Post `payload` to `url` as JSON; report the queued job or the refusal in the form.
  async function submitJob(form, url, payload) {
    const status = form.querySelector("[data-form-status]");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    showStatus(status, "Submitting…", "busy");
    try {
      const job = await request(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload),
      });
      showStatus(status, `Job ${job.id} (${job.kind}) ${job.status}; the table above follows it.`, "ok");
      refresh();
    } catch (error) {
      const unavailable = error.status === 404 || error.status === 405;
      const message = unavailable
        ? `This server does not offer ${url} yet (${error.status}: ${error.message}).`
        : error.message;
      showStatus(status, message, "error");
    } finally {
      button.disabled = false;
    }
  }

  document.getElementById("reindex-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    submitJob(form, "/admin/reindex", { backbone: form.elements.backbone.value });
  });

  const retrain = document.getElementById("retrain-form");
  const folderOnly = retrain.querySelector("[data-folder-only]");
  retrain.elements.dataset.addEventListener("change", () => {
    folderOnly.hidden = retrain.elements.dataset.value !== "folder";
  });

  // The request body: the named fields, then any extra parameters typed as JSON.
  function retrainPayload(form) {
    const text = form.elements.parameters.value.trim() || "{}";
    let extra;
    try {
      extra = JSON.parse(text);
    } catch (error) {
      throw new Error(`More parameters is not JSON: ${error.message}`);
    }
    if (extra === null || typeof extra !== "object" || Array.isArray(extra)) {
      throw new Error("More parameters must be a JSON object, like {\"lr\": 0.0005}.");
    }
    const dataset = { kind: form.elements.dataset.value };
    if (dataset.kind === "folder") {
      dataset.path = form.elements.path.value.trim();
      if (form.elements.split.value.trim()) dataset.split = form.elements.split.value.trim();
    }
    const payload = { name: form.elements.name.value.trim(), dataset };
    if (form.elements.epochs.value) payload.epochs = Number(form.elements.epochs.value);
    return { ...payload, ...extra };
  }

  retrain.addEventListener("submit", (event) => {
    event.preventDefault();
    let payload;
    try {
      payload = retrainPayload(retrain);
    } catch (error) {
      showStatus(retrain.querySelector("[data-form-status]"), error.message, "error");
      return;
    }
    submitJob(retrain, "/admin/retrain", payload);
  });

  refresh();
})();
