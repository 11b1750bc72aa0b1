"use strict";
// 数据质控 dashboard: sortable unit tables and the search box above them (no inline script: CSP)
document.querySelectorAll("table.q-sortable").forEach(function (t) {
  t.querySelectorAll("th").forEach(function (th, i) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("asc");
      t.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      var num = th.dataset.type === "num", body = t.tBodies[0];
      var rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[i], y = b.cells[i];
        var r = num ? parseFloat(x.dataset.v) - parseFloat(y.dataset.v) : x.textContent.localeCompare(y.textContent, "zh-CN");
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll("input.q-search").forEach(function (inp) {
  inp.addEventListener("input", function () {
    var q = inp.value.trim();
    document.getElementById(inp.dataset.table).tBodies[0].querySelectorAll("tr").forEach(function (r) {
      r.style.display = !q || r.cells[0].textContent.indexOf(q) >= 0 ? "" : "none";
    });
  });
});
