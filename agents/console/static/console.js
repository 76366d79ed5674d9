// Live overview: re-fetch the agents table every two seconds and swap it in.
// Plain JS, served from /static (the CSP allows no inline script and nothing from elsewhere).
"use strict";
(function () {
  const box = document.querySelector("[data-refresh]");
  if (!box) return;
  const url = box.getAttribute("data-refresh");
  async function refresh() {
    try {
      const reply = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (reply.ok) box.innerHTML = await reply.text();
    } catch (e) {
      // The daemon is restarting or gone: keep the last table and try again.
    }
  }
  setInterval(refresh, 2000);
})();
