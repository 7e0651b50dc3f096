// fileregistry UI: progressive enhancement only. Every page works without this file.
"use strict";

(function () {
  // A fetch that ended on the sign-in page (the session ran out): go there for real, keeping this page.
  function toLoginIfRedirected(response) {
    if (response.redirected && new URL(response.url).pathname === "/ui/login") {
      window.location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
      return true;
    }
    return false;
  }

  // --- Confirmation dialog for forms marked data-confirm (without script, the server asks on a page).
  const dialog = document.getElementById("confirm-dialog");
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    const message = form.getAttribute("data-confirm");
    if (message && dialog && typeof dialog.showModal === "function") {
      const flag = form.querySelector("input[name=confirmed]");
      if (flag && flag.value === "yes") return; // confirmed already: let it go
      event.preventDefault();
      dialog.querySelector(".dialog-message").textContent = message;
      dialog.returnValue = "";
      dialog.onclose = function () {
        if (dialog.returnValue === "ok") {
          if (flag) flag.value = "yes";
          markBusy(form);
          form.submit();
        }
      };
      dialog.showModal();
      const ok = dialog.querySelector("[data-confirm-ok]");
      if (ok) ok.focus();
      return;
    }
    markBusy(form);
  });

  function markBusy(form) {
    const button = form.querySelector("button[type=submit], button:not([type])");
    if (!button) return;
    const busy = form.getAttribute("data-busy");
    // Disable after the submit event so the browser still sends the form.
    setTimeout(function () {
      button.disabled = true;
      button.classList.add("busy");
      if (busy) button.textContent = busy;
    }, 0);
  }

  // --- Selects that apply at once.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form) select.form.requestSubmit();
    });
  });

  // --- "Go back" buttons on error pages.
  document.querySelectorAll("[data-back]").forEach(function (button) {
    if (history.length > 1) button.hidden = false;
    button.addEventListener("click", function () { history.back(); });
  });

  // --- Local time as a tooltip on <time datetime>.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    const d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) el.title = (el.title ? el.title + "\n" : "") + d.toLocaleString() + " (your time)";
  });

  // --- Lazy file system tree: a directory's rows are fetched when it is expanded.
  function depthOf(row) { return parseInt(row.getAttribute("data-depth") || "0", 10); }

  function collapse(row) {
    const depth = depthOf(row);
    let next = row.nextElementSibling;
    while (next && next.classList.contains("tree-row") && depthOf(next) > depth) {
      const after = next.nextElementSibling;
      next.remove();
      next = after;
    }
  }

  async function fetchRows(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (toLoginIfRedirected(response)) return null;
    if (!response.ok) throw new Error("HTTP " + response.status);
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    return template.content;
  }

  function errorRow(depth, message) {
    const tr = document.createElement("tr");
    tr.className = "tree-row";
    tr.setAttribute("data-depth", String(depth));
    const td = document.createElement("td");
    td.colSpan = 7;
    td.className = "tree-name text-error";
    td.setAttribute("data-indent", String(Math.min(depth, 12)));
    td.textContent = "Could not load: " + message;
    tr.appendChild(td);
    return tr;
  }

  document.addEventListener("click", async function (event) {
    const toggle = event.target.closest(".tree-toggle");
    if (toggle) {
      const row = toggle.closest("tr");
      if (toggle.getAttribute("aria-expanded") === "true") {
        collapse(row);
        toggle.setAttribute("aria-expanded", "false");
        toggle.textContent = "▸";
        return;
      }
      toggle.classList.add("loading");
      try {
        const rows = await fetchRows(toggle.getAttribute("data-children"));
        if (rows) row.after(rows);
        toggle.setAttribute("aria-expanded", "true");
        toggle.textContent = "▾";
      } catch (err) {
        row.after(errorRow(depthOf(row) + 1, err.message));
      } finally {
        toggle.classList.remove("loading");
      }
      return;
    }
    const more = event.target.closest("[data-more]");
    if (more) {
      const row = more.closest("tr");
      more.disabled = true;
      try {
        const rows = await fetchRows(more.getAttribute("data-more"));
        if (rows) row.replaceWith(rows);
      } catch (err) {
        row.replaceWith(errorRow(depthOf(row), err.message));
      }
    }
  });

  // --- A running job's page refreshes itself.
  const refresh = document.querySelector("[data-autorefresh]");
  if (refresh) {
    const seconds = parseInt(refresh.getAttribute("data-autorefresh"), 10) || 3;
    setTimeout(function () { location.reload(); }, seconds * 1000);
  }
})();
