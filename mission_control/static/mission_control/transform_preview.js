// Trigger form: render the request the transform makes as you edit it (the server renders it,
// nothing is sent), with the error where a template fails.
"use strict";
(function () {
  const FIELDS = ["url", "transform_method", "transform_url", "transform_query",
    "transform_headers", "transform_body"];

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function collect(panel) {
    const fields = {};
    for (const name of FIELDS) {
      const element = document.getElementById("id_" + name);
      if (element) fields[name] = element.value;
    }
    const name = document.getElementById("id_name");
    if (name) fields.name = name.value;
    return {
      trigger: panel.dataset.trigger,
      fields: fields,
      sample: document.getElementById("mc-preview-data").value,
    };
  }

  function show(reply) {
    const error = document.getElementById("mc-preview-error");
    const out = document.getElementById("mc-preview-request");
    document.getElementById("mc-preview-source").textContent =
      reply.event ? "Rendered over " + reply.event + "; nothing is sent." : "";
    error.hidden = !reply.error;
    error.textContent = reply.error || "";
    if (reply.error) {
      out.textContent = "";
      return;
    }
    const headers = Object.entries(reply.headers).map(([k, v]) => k + ": " + v).join("\n");
    out.textContent = reply.method + " " + reply.url + "\n" + headers + "\n\n" + reply.body;
  }

  let timer = null;
  let sequence = 0;

  function refresh() {
    const panel = document.getElementById("mc-preview");
    const mine = ++sequence;
    fetch(panel.dataset.url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify(collect(panel)),
    })
      .then((response) => response.json())
      .then((reply) => { if (mine === sequence) show(reply); })
      .catch((error) => { if (mine === sequence) show({error: String(error)}); });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.getElementById("mc-preview");
    if (!panel) return;
    document.getElementById("mc-preview-run").addEventListener("click", refresh);
    for (const name of FIELDS) {
      const element = document.getElementById("id_" + name);
      if (element) element.addEventListener("input", later);
      if (element) element.addEventListener("change", later);
    }
    document.getElementById("mc-preview-data").addEventListener("input", later);
    refresh();
  });
})();
