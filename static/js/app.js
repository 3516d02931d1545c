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

  // Search boxes: <input data-filter="selector of items with data-name"
  // data-filter-empty="selector of the 'nothing matches' note">.
  document.addEventListener("input", function (event) {
    if (!event.target.matches("input[data-filter]")) { return; }
    var needle = event.target.value.trim().toLowerCase();
    var shown = 0;
    document.querySelectorAll(event.target.getAttribute("data-filter")).forEach(function (el) {
      el.hidden = Boolean(needle) && el.getAttribute("data-name").toLowerCase().indexOf(needle) === -1;
      if (!el.hidden) { shown += 1; }
    });
    var none = event.target.getAttribute("data-filter-empty");
    if (none) { document.querySelector(none).hidden = shown > 0; }
  });

  // The active orders: htmx polls them (hx-swap="none") and this puts in only the orders
  // whose data-version changed, so the control in focus and the scroll stay where they
  // are. A code that arrives is announced, and counted in the tab's title while hidden.
  var pageTitle = document.title;
  var unseen = 0;

  function announce(texts) {
    var region = document.getElementById("order-announcer");
    if (!region || !texts.length) { return; }
    region.textContent = texts.join(" ");
    if (document.hidden) {
      unseen += texts.length;
      document.title = "(" + unseen + ") " + region.getAttribute("data-title-arrived") + " — ZeroTP";
    }
  }

  function seen() {
    if (document.hidden || !unseen) { return; }
    unseen = 0;
    document.title = pageTitle;
  }
  document.addEventListener("visibilitychange", seen);
  window.addEventListener("focus", seen);

  function controlName(el) {
    return el.getAttribute("aria-label") || el.textContent.trim();
  }

  function sameControl(article, focused) {
    var name = controlName(focused);
    return Array.prototype.find.call(article.querySelectorAll("button, a, summary"), function (el) {
      return controlName(el) === name;
    });
  }

  function mergeOrders(current, html) {
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("active-orders");
    if (!fresh) { return; }
    var focused = current.contains(document.activeElement) ? document.activeElement : null;
    var focusedOrder = focused && focused.closest("[data-version]");
    var arrived = [];
    var wanted = Array.prototype.map.call(fresh.children, function (node) {
      var old = node.id ? current.querySelector(":scope > #" + CSS.escape(node.id)) : null;
      if (old && old.getAttribute("data-version") === node.getAttribute("data-version")) {
        return old;
      }
      var code = node.getAttribute("data-code");
      if (code && (!old || old.getAttribute("data-code") !== code)) {
        arrived.push(node.getAttribute("data-announce"));
      }
      return document.importNode(node, true);
    });
    Array.prototype.slice.call(current.children).forEach(function (child) {
      if (wanted.indexOf(child) === -1) { current.removeChild(child); }
    });
    wanted.forEach(function (node, index) {
      if (current.children[index] !== node) {
        current.insertBefore(node, current.children[index] || null);
      }
    });
    if (focusedOrder && !focusedOrder.isConnected) {
      // Its order changed under the focus: go on from the same control in the new copy,
      // else from its main action (Finish once the code is there), else from the panel's
      // heading when the order is gone.
      var again = focusedOrder.id && document.getElementById(focusedOrder.id);
      var target = (again && (sameControl(again, focused) || again.querySelector("[data-primary]"))) ||
        document.getElementById("active-title");
      if (target) { target.focus(); }
    }
    tick();
    announce(arrived);
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.id === "active-orders" && event.detail.successful && event.detail.xhr) {
      mergeOrders(elt, event.detail.xhr.responseText);
    }
  });

  function enhance() {
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:load", function (event) { enhance(event.detail.elt); });
})();
