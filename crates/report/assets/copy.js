// Copy buttons: copy the text of the element named by data-copy. Works offline and from
// file:// (falls back to selecting the text and execCommand when the Clipboard API is absent).
(function () {
  "use strict";
  var status = document.getElementById("copy-status");
  function say(button, text) {
    button.textContent = text;
    if (status) { status.textContent = text; }
    window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }
  function fallback(button, target) {
    var ok = false;
    try {
      var range = document.createRange();
      range.selectNodeContents(target);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      ok = document.execCommand("copy");
    } catch (e) { ok = false; }
    say(button, ok ? "Copied" : "Selected: press Ctrl+C");
  }
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (!button) { return; }
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) { return; }
    var text = target.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say(button, "Copied"); },
        function () { fallback(button, target); }
      );
    } else {
      fallback(button, target);
    }
  });
})();
