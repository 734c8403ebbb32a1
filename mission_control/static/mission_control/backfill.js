// Backfill dialog: count the rows first, then send them batch by batch (each batch one short
// request, committed on its own) and show the progress.
"use strict";
(function () {
  function value(id) { return document.getElementById(id).value; }

  function selection() {
    return {trigger: value("mc-backfill-trigger"), filters: value("mc-backfill-filters")};
  }

  function post(url, body) {
    const token = document.querySelector("#mc-backfill input[name=csrfmiddlewaretoken]").value;
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify(body),
    }).then((response) => response.json().then((reply) => {
      if (!response.ok || reply.error) throw new Error(reply.error || response.statusText);
      return reply;
    }));
  }

  function fail(error) {
    const note = document.getElementById("mc-backfill-error");
    note.hidden = false;
    note.textContent = String(error.message || error);
  }

  let total = 0;

  function count(panel) {
    document.getElementById("mc-backfill-error").hidden = true;
    post(panel.dataset.countUrl, selection()).then((reply) => {
      total = reply.count;
      document.getElementById("mc-backfill-counted").textContent =
        total + " rows match; they will be sent to " + reply.trigger + ".";
      const start = document.getElementById("mc-backfill-start");
      start.textContent = "Send " + total + " rows";
      start.disabled = total === 0;
    }).catch(fail);
  }

  function send(panel) {
    const start = document.getElementById("mc-backfill-start");
    const progress = document.getElementById("mc-backfill-progress");
    const status = document.getElementById("mc-backfill-status");
    start.disabled = true;
    progress.hidden = false;
    progress.max = Math.max(total, 1);
    let sent = 0;
    let skipped = 0;
    const body = {
      ...selection(),
      backfill_id: value("mc-backfill-id"),
      batch_size: Number(value("mc-backfill-batch")),
      after: null,
    };
    function next() {
      return post(panel.dataset.batchUrl, body).then((reply) => {
        sent += reply.sent;
        skipped += reply.skipped;
        body.after = reply.last_pk;
        progress.value = sent + skipped;
        status.textContent = (sent + skipped) + " of " + total + " rows: " + sent + " sent, " +
          skipped + " already sent" + (reply.done ? ". Done." : "…");
        if (!reply.done) return next();
        return null;
      });
    }
    next().catch(fail);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.getElementById("mc-backfill");
    if (!panel) return;
    document.getElementById("mc-backfill-count").addEventListener("click", () => count(panel));
    document.getElementById("mc-backfill-start").addEventListener("click", () => send(panel));
  });
})();
