// care-relay console: the only script the console loads (its CSP allows no other).
// While signed in, it asks the server (without counting as activity) whether the session is
// still alive, and leaves for the sign-in page once the server has ended it (idle logoff).
(function () {
  'use strict';
  var body = document.body;
  var idle = Number(body && body.getAttribute('data-idle-seconds'));
  if (!idle) return;
  var every = Math.max(1000, Math.min(15000, (idle * 1000) / 4));
  function check() {
    fetch('/console/api/session', { credentials: 'same-origin', cache: 'no-store' }).then(function (res) {
      if (res.status === 401) {
        window.location.assign('/console/login?ended=idle');
        return;
      }
      window.setTimeout(check, every);
    }, function () {
      window.setTimeout(check, every);
    });
  }
  window.setTimeout(check, every);
})();
