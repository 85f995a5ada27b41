// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var target = ev.target;
    if (target && target.closest && target.closest("[data-print]")) {
      window.print();
    }
  });
  // A form submits once: the second click on a status button would record twice.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.dataset.sent === "1") {
      ev.preventDefault();
      return;
    }
    form.dataset.sent = "1";
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form").forEach(function (f) { delete f.dataset.sent; });
  });
})();
