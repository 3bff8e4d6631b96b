// The vote form: one submission per page, and the keys ← (left), → (right), space or ↓ (tie).
(function () {
  var f = document.getElementById('vote'), sent = false;
  if (!f) return;
  f.addEventListener('submit', function (e) { if (sent) { e.preventDefault(); } sent = true; });
  document.addEventListener('keydown', function (e) {
    var k = {ArrowLeft: 'left', ArrowRight: 'right', ' ': 'tie', ArrowDown: 'tie'}[e.key];
    if (!k) return;
    e.preventDefault();
    if (sent) return;
    sent = true;
    var i = document.createElement('input');
    i.type = 'hidden'; i.name = 'choice'; i.value = k;
    f.appendChild(i);
    f.submit();
  });
})();
