/* ZeroTP dashboard behaviour: small progressive enhancements. Every page works without
   it; htmx (static/js/htmx.min.js) does the live updates. */
(function () {
  "use strict";

  // Confirm before actions marked data-confirm (cancel an order, rotate a secret...).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Copy buttons: <button data-copy="text">.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try {
        document.execCommand("copy") ? resolve() : reject(new Error("copy refused"));
      } catch (error) {
        reject(error);
      } finally {
        document.body.removeChild(area);
      }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) {
      var label = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", label);
      copyText(button.getAttribute("data-copy")).then(function () {
        button.textContent = button.getAttribute("data-copied") || "Copied";
        button.classList.add("copied");
        setTimeout(function () {
          button.textContent = label;
          button.classList.remove("copied");
        }, 1500);
      }, function () {
        window.prompt(button.getAttribute("data-copy-prompt") || "Copy:", button.getAttribute("data-copy"));
      });
      return;
    }
    // Preset buttons: <button data-fill="input id" data-value="...">.
    var preset = event.target.closest("[data-fill]");
    if (preset) {
      var input = document.getElementById(preset.getAttribute("data-fill"));
      input.value = preset.getAttribute("data-value");
      input.focus();
      return;
    }
    var toggle = event.target.closest(".nav-toggle");
    if (toggle) {
      var nav = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
  });

  // Times: the server writes UTC; show them in the reader's own zone and language.
  var lang = document.documentElement.lang || undefined;
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment)) { return; }
      var options = el.getAttribute("data-local") === "time"
        ? { timeStyle: "medium" }
        : { dateStyle: "medium", timeStyle: "short" };
      try {
        el.textContent = new Intl.DateTimeFormat(lang, options).format(moment);
        el.title = el.getAttribute("datetime");
      } catch (error) { /* keep the UTC text */ }
    });
  }

  // Countdowns: <span data-expires="ISO" data-expired-label="expired">.
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.floor((new Date(el.getAttribute("data-expires")) - Date.now()) / 1000);
      if (isNaN(left)) { return; }
      if (left <= 0) {
        el.textContent = el.getAttribute("data-expired-label") || "0:00";
        return;
      }
      var minutes = Math.floor(left / 60);
      el.textContent = minutes >= 60
        ? Math.floor(minutes / 60) + ":" + pad(minutes % 60) + ":" + pad(left % 60)
        : minutes + ":" + pad(left % 60);
    });
  }

  // The landing page's service search.
  document.addEventListener("input", function (event) {
    if (!event.target.matches("input[data-filter]")) { return; }
    var needle = event.target.value.trim().toLowerCase();
    document.querySelectorAll(event.target.getAttribute("data-filter")).forEach(function (el) {
      el.hidden = needle && el.getAttribute("data-name").toLowerCase().indexOf(needle) === -1;
    });
  });

  function enhance(root) {
    localTimes(root);
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
})();
