// 宁宁's chat page: posts each message to /api/v1/assistant/chat and shows the answer with its sources.
(function () {
  "use strict";
  var form = document.getElementById("ask");
  var input = document.getElementById("message");
  var log = document.getElementById("log");
  var conversation = null;

  function add(role, text, extra) {
    var li = document.createElement("li");
    li.className = "msg " + role + (extra && extra.crisis ? " crisis" : "");
    var p = document.createElement("p");
    p.textContent = text;
    li.appendChild(p);
    if (extra && extra.sources && extra.sources.length) {
      var s = document.createElement("small");
      s.textContent = "来源：" + extra.sources.map(function (x) { return x.title; }).join("、");
      li.appendChild(s);
    }
    log.appendChild(li);
    li.scrollIntoView({ block: "end" });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    add("user", text);
    input.value = "";
    fetch("/api/v1/assistant/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ message: text, conversation: conversation })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (!res.ok) { add("bot", (res.body && res.body.detail) || "出错了，请稍后再试或拨打 12320。"); return; }
      conversation = res.body.conversation;
      add("bot", res.body.answer, res.body);
    }).catch(function () {
      add("bot", "网络连接失败，请稍后再试；急事请拨打 12320，急救请拨 120。");
    });
  });
}());
