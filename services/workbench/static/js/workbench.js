// rcm workbench: evidence highlighting, decisions, added codes, lease countdown, shortcuts.
// No framework: htmx does the requests; this file only adds what happens in the page.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // --- evidence: a code row and its marks light up together ------------------------------
  function light(refs, on) {
    refs.forEach(function (ref) {
      $$('mark.ev').forEach(function (m) {
        if ((m.dataset.refs || "").split(" ").indexOf(ref) >= 0) m.classList.toggle("lit", on);
      });
      var row = $('.code-row[data-ref="' + ref + '"]');
      if (row) row.classList.toggle("lit", on);
    });
  }
  function wireEvidence(root) {
    $$(".code-row", root).forEach(function (row) {
      var ref = [row.dataset.ref];
      ["mouseenter", "focusin"].forEach(function (ev) { row.addEventListener(ev, function () { light(ref, true); }); });
      ["mouseleave", "focusout"].forEach(function (ev) { row.addEventListener(ev, function () { light(ref, false); }); });
    });
    $$("mark.ev", root).forEach(function (m) {
      var refs = (m.dataset.refs || "").split(" ").filter(Boolean);
      m.addEventListener("mouseenter", function () { light(refs, true); });
      m.addEventListener("mouseleave", function () { light(refs, false); });
    });
  }

  // --- decisions: the row shows its state ------------------------------------------------
  function showDecision(row) {
    var checked = $('input[type=radio]:checked', row);
    row.classList.remove("accepted", "rejected", "replaced");
    if (checked) row.classList.add({ accept: "accepted", reject: "rejected", replace: "replaced" }[checked.value]);
  }
  function decide(row, value) {
    var radio = $('input[type=radio][value="' + value + '"]', row);
    if (!radio) return;
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
    showDecision(row);
    if (value === "replace") $('input[name$="-with"]', row).focus();
  }

  // --- added codes ------------------------------------------------------------------------
  function isDiagnosis(code, system) {
    if (system) return system === "icd10cm";
    return /^[A-Z][0-9][0-9A-Z]/.test(code) && !/^[A-Z][0-9]{4}$/.test(code);
  }
  function addCode(code, system) {
    code = (code || "").trim().toUpperCase();
    var list = $("#added");
    if (!code || !list) return;
    var kind = isDiagnosis(code, system) ? "dx" : "px";
    if ($('input[name="add-' + kind + '"][value="' + code + '"]', list)) return;
    var li = document.createElement("li");
    var input = document.createElement("input");
    input.type = "hidden"; input.name = "add-" + kind; input.value = code;
    var span = document.createElement("span");
    span.className = "code"; span.textContent = code;
    var btn = document.createElement("button");
    btn.type = "button"; btn.className = "link"; btn.dataset.remove = ""; btn.textContent = "Remove " + code;
    li.appendChild(input); li.appendChild(span);
    li.appendChild(document.createTextNode(kind === "dx" ? " diagnosis " : " procedure "));
    li.appendChild(btn);
    list.appendChild(li);
    document.body.dispatchEvent(new Event("codes-changed"));
  }
  function replaceSelected(code) {
    var row = $(".code-row.selected") || $(".code-row:focus-within");
    if (!row) return;
    decide(row, "replace");
    $('input[name$="-with"]', row).value = code;
    document.body.dispatchEvent(new Event("codes-changed"));
  }

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    if (t.matches("[data-add-code]")) addCode(t.dataset.addCode, t.dataset.system);
    else if (t.matches("[data-replace-code]")) replaceSelected(t.dataset.replaceCode);
    else if (t.matches("[data-add-manual]")) { var m = $("#manual-code"); addCode(m.value); m.value = ""; }
    else if (t.matches("[data-remove]")) { t.closest("li").remove(); document.body.dispatchEvent(new Event("codes-changed")); }
    else if (t.matches("[data-stop-waiting]")) { var f = t.closest("form"); if (f) f.remove(); }
    var row = t.closest(".code-row");
    if (row) select(row);
  });
  document.addEventListener("change", function (e) {
    var row = e.target instanceof Element && e.target.closest(".code-row");
    if (row) showDecision(row);
  });

  // --- selection and keyboard shortcuts ---------------------------------------------------
  function rows() { return $$(".code-row"); }
  function select(row) {
    rows().forEach(function (r) { r.classList.remove("selected"); });
    row.classList.add("selected");
  }
  function move(step) {
    var all = rows();
    if (!all.length) return;
    var at = all.indexOf($(".code-row.selected"));
    var next = all[Math.max(0, Math.min(all.length - 1, at + step))] || all[0];
    select(next);
    next.focus();
    light([next.dataset.ref], true);
    all.forEach(function (r) { if (r !== next) light([r.dataset.ref], false); });
    next.scrollIntoView({ block: "nearest" });
  }
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      var done = $("#complete");
      if (done) { e.preventDefault(); done.click(); }
      return;
    }
    if (e.key === "Escape" && typing(document.activeElement)) { document.activeElement.blur(); return; }
    if (typing(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    var sel = $(".code-row.selected");
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a": if (sel) decide(sel, "accept"); break;
      case "r": if (sel) decide(sel, "reject"); break;
      case "e": if (sel) { e.preventDefault(); decide(sel, "replace"); } break;
      case "/": var q = $("#code-q"); if (q) { e.preventDefault(); q.focus(); } break;
      case "n": var next = $("[data-shortcut=n]"); if (next) next.click(); break;
      case "?": var d = $("#shortcuts"); if (d && d.showModal) d.open ? d.close() : d.showModal(); break;
      default: return;
    }
  });

  // --- lease countdown --------------------------------------------------------------------
  function tick() {
    $$("time.countdown[data-expires]").forEach(function (t) {
      var left = Math.round((Date.parse(t.dataset.expires) - Date.now()) / 1000);
      if (isNaN(left)) return;
      if (left <= 0) { t.textContent = "expired"; t.classList.add("low"); return; }
      var m = Math.floor(left / 60), s = left % 60;
      t.textContent = m + ":" + (s < 10 ? "0" : "") + s + " left";
      t.classList.toggle("low", left < 120);
    });
  }
  setInterval(tick, 1000);

  function init(root) {
    wireEvidence(root);
    $$(".code-row", root).forEach(showDecision);
    tick();
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (e) { init(e.target); });
})();
