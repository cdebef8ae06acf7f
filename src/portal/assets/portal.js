// zerotouch partner portal: live checking of the MAC typed into the "+ New phone" form.
// As the partner types, the field turns green (valid, with the vendor from the OUI) or red
// (with the reason), and the Gigaset ID field appears only for a Gigaset MAC. The verdict is
// the server's (/devices/check, the claim rules' own check); without this script the form
// still works and the server says the same after submitting.
(function () {
  "use strict";
  // Bulk add: a CSV or text file chosen is shown in the box (the server reads the posted file
  // itself, so without this script an upload still works).
  var file = document.getElementById("bulk-file");
  if (file) {
    file.addEventListener("change", function () {
      var chosen = file.files && file.files[0];
      if (!chosen) { return; }
      chosen.text().then(function (text) { document.getElementById("lines").value = text; });
    });
  }
})();

(function () {
  "use strict";
  var form = document.getElementById("new-phone");
  if (!form) { return; }
  var mac = document.getElementById("mac");
  var code = document.getElementById("claim_code");
  var codeRow = document.getElementById("claim-code-row");
  var state = document.getElementById("mac-state");
  var timer = null;
  var asked = 0;

  function show(cls, text, gigaset) {
    mac.classList.remove("mac-valid", "mac-invalid");
    if (cls) { mac.classList.add(cls); }
    mac.setAttribute("aria-invalid", cls === "mac-invalid" ? "true" : "false");
    state.textContent = text;
    codeRow.hidden = !gigaset && !code.value;
  }

  function check() {
    var value = mac.value.trim();
    if (!value) { show(null, "", false); return; }
    var ticket = ++asked;
    var url = "/devices/check?mac=" + encodeURIComponent(value);
    if (code.value.trim()) { url += "&claim_code=" + encodeURIComponent(code.value.trim()); }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (ticket !== asked) { return; }
        var good = answer.state === "available" || answer.state === "needs_claim_code";
        var vendor = answer.vendor ? " · " + answer.vendor : "";
        var label = answer.state === "available" ? form.dataset.valid : (answer.label || form.dataset.invalid);
        show(good ? "mac-valid" : "mac-invalid", label + vendor, !!answer.needs_claim_code);
      })
      .catch(function () { show(null, "", true); });
  }

  function later() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(check, 200);
  }

  mac.addEventListener("input", later);
  code.addEventListener("input", later);
  codeRow.hidden = !code.value;
  if (mac.value) { check(); }
})();
