// Trigger form: show only the fields the chosen type uses, and only the chosen model's fields.
"use strict";
(function () {
  const DB = ["DB_INSERT", "DB_UPDATE", "DB_DELETE"];
  const FILE = ["FILE_CREATE", "FILE_DELETE"];

  function row(name) {
    const input = document.getElementById("id_" + name);
    return document.querySelector(".form-row.field-" + name) || (input && input.closest(".form-row"));
  }

  function show(name, visible) {
    const element = row(name);
    if (element) element.hidden = !visible;
  }

  function filterFields(selectId, model) {
    const select = document.getElementById(selectId);
    if (!select) return;
    for (const group of select.querySelectorAll("optgroup")) {
      const mine = group.label === model;
      group.hidden = !mine;
      group.disabled = !mine;
      if (!mine) for (const option of group.querySelectorAll("option")) option.selected = false;
    }
  }

  function update() {
    const kind = document.getElementById("id_kind").value;
    const isDb = DB.includes(kind);
    const isFile = FILE.includes(kind);
    show("custom_type", kind === "custom");
    show("source_model", isDb);
    show("source_storage", isFile);
    // Rows used by some kinds only, as triggers/fields.py declares them ("custom": any custom type).
    const fieldKinds = JSON.parse(document.getElementById("id_kind").dataset.fieldKinds || "{}");
    for (const [name, kinds] of Object.entries(fieldKinds)) {
      show(name, kinds.includes(kind));
    }
    const model = (document.getElementById("id_source_model") || {}).value || "";
    filterFields("id_watch_fields", model);
    filterFields("id_payload_fields", model);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const kind = document.getElementById("id_kind");
    if (!kind) return;
    kind.addEventListener("change", update);
    const model = document.getElementById("id_source_model");
    if (model) model.addEventListener("change", update);
    update();
  });
})();
