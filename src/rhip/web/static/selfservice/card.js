// 电子健康卡页面：动态码到期前自动换新。
(function () {
  "use strict";
  var img = document.getElementById("dynamic-qr");
  if (!img) { return; }
  var ttl = parseInt(img.dataset.ttl || "60", 10);
  setInterval(function () {
    img.src = "/selfservice/card/dynamic.svg?t=" + Date.now();
  }, Math.max(10, ttl - 10) * 1000);
})();
