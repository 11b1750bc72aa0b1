// 自助机模拟：读卡 → 挂号 / 缴费 / 取单，均以终端密钥（X-Terminal-Key）调用平台接口。
(function () {
  "use strict";
  var key = "";
  var patient = null; // {name, id_number, card_id}
  var last = [];
  var KINDS = { register: "挂号", take_number: "取号", payment: "缴费", print: "取单", enquiry: "查询",
    issue_card: "发卡", top_up: "充值" };
  var $ = function (id) { return document.getElementById(id); };

  function txnNo() {
    return "K" + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  }
  function masked(id) { return id.slice(0, 6) + "********" + id.slice(-4); }
  function show(id, on) { $(id).hidden = !on; }
  function say(text, bad) {
    var box = $("kiosk-result");
    box.textContent = text;
    box.className = "kiosk-step " + (bad ? "bad" : "good");
  }
  function call(method, url, body) {
    var opts = { method: method, headers: { "X-Terminal-Key": key } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.detail || ("请求失败：" + r.status)); }
        return data;
      });
    });
  }
  function post(kind, extra) {
    var body = { txn_no: txnNo(), kind: kind, occurred_at: new Date().toISOString(), duration_ms: 30000 };
    Object.keys(extra || {}).forEach(function (k) { body[k] = extra[k]; });
    return call("POST", "/api/v1/selfservice/transactions", body).then(function (t) {
      last.push(t);
      return t;
    });
  }

  $("save-key").addEventListener("click", function () {
    key = $("terminal-key").value.trim();
    if (!key) { say("请输入终端密钥", true); return; }
    call("GET", "/api/v1/selfservice/transactions?limit=1").then(function () {
      show("kiosk-setup", false);
      show("kiosk-read", true);
      say("终端已就绪，请读卡。");
    }).catch(function (e) { say("终端密钥无效：" + e.message, true); });
  });

  $("read-card").addEventListener("click", function () {
    var code = $("card-code").value.trim();
    var body = { code: code };
    var sf = $("second-factor").value.trim();
    if (sf) { body.second_factor = sf; }
    call("POST", "/api/v1/cards/resolve", body).then(function (p) {
      patient = p;
      last = [];
      $("patient").textContent = "就诊人：" + p.name + "（" + masked(p.id_number) + "）";
      show("kiosk-actions", true);
      post("enquiry", { id_number: p.id_number });
      say("读卡成功，请选择业务。");
    }).catch(function (e) { say("读卡失败：" + e.message, true); });
  });

  $("show-register").addEventListener("click", function () {
    show("pay-panel", false);
    show("register-panel", true);
    var list = $("slots");
    list.textContent = "";
    call("GET", "/api/v1/selfservice/kiosk/slots").then(function (slots) {
      if (!slots.length) { list.textContent = "今日号源已挂完。"; return; }
      slots.forEach(function (s) {
        var li = document.createElement("li");
        var b = document.createElement("button");
        b.type = "button";
        b.className = "slot";
        b.dataset.slot = s.id;
        b.textContent = s.department + " " + s.start + "–" + s.end + "（余 " + s.left + "）";
        b.addEventListener("click", function () {
          post("register", {
            slot_id: s.id, id_number: patient.id_number, amount: $("reg-fee").value.trim(), pay_method: "insurance"
          }).then(function (t) {
            say("挂号成功：" + s.department + " " + s.start + "，预约号 " + t.appointment_id + "，挂号费 " + t.amount + " 元。");
          }).catch(function (e) { say("挂号失败：" + e.message, true); });
        });
        li.appendChild(b);
        list.appendChild(li);
      });
    }).catch(function (e) { say("号源查询失败：" + e.message, true); });
  });

  $("show-pay").addEventListener("click", function () {
    show("register-panel", false);
    show("pay-panel", true);
  });

  $("do-pay").addEventListener("click", function () {
    var method = document.querySelector("input[name=pay-method]:checked").value;
    post("payment", { amount: $("pay-amount").value.trim(), pay_method: method, id_number: patient.id_number })
      .then(function (t) { say("缴费成功：" + t.amount + " 元（" + (method === "insurance" ? "医保" : "自费") + "）。"); })
      .catch(function (e) { say("缴费失败：" + e.message, true); });
  });

  $("do-print").addEventListener("click", function () {
    post("print", { pages: 1 }).then(function () {
      var r = $("receipt");
      r.textContent = "";
      var h = document.createElement("h3");
      h.textContent = "凭条 · " + (patient ? patient.name : "");
      r.appendChild(h);
      last.filter(function (t) { return t.kind !== "enquiry"; }).forEach(function (t) {
        var p = document.createElement("p");
        p.textContent = t.txn_no + " " + (KINDS[t.kind] || t.kind) + (t.amount ? " " + t.amount + " 元" : "");
        r.appendChild(p);
      });
      show("receipt", true);
      say("凭条已打印，请取走。");
    }).catch(function (e) { say("打印失败：" + e.message, true); });
  });

  $("finish").addEventListener("click", function () {
    patient = null;
    last = [];
    $("card-code").value = "";
    $("second-factor").value = "";
    $("patient").textContent = "";
    show("kiosk-actions", false);
    show("receipt", false);
    say("请取走您的卡，欢迎下次使用。");
  });
})();
