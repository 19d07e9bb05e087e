// Turnout console: the live indicator, the confirmed actions and the migration charts. htmx polls the live part.
(function () {
  'use strict';
  var lastOk = Date.now();
  var failing = false;

  function conn(ok, text) {
    var el = document.getElementById('conn');
    if (!el) return;
    el.className = 'conn ' + (ok ? 'ok' : 'down');
    el.textContent = text;
  }

  document.addEventListener('htmx:afterRequest', function (e) {
    var xhr = e.detail.xhr;
    if (e.detail.successful) {
      lastOk = Date.now();
      failing = false;
      conn(true, 'live');
    } else if (!xhr || xhr.status === 0 || xhr.status >= 500) {
      failing = true;
      conn(false, 'control plane unreachable');
    } else {
      conn(false, 'error ' + xhr.status);
    }
  });
  document.addEventListener('htmx:sendError', function () {
    failing = true;
    conn(false, 'control plane unreachable');
  });
  document.addEventListener('htmx:timeout', function () {
    failing = true;
    conn(false, 'control plane unreachable');
  });
  // A poll that never comes back (a hung server) says so too.
  setInterval(function () {
    var age = Math.round((Date.now() - lastOk) / 1000);
    if (age > 6) {
      conn(false, 'control plane unreachable (last answer ' + age + ' s ago)');
    }
  }, 1000);
  document.addEventListener('htmx:configRequest', function (e) {
    e.detail.timeout = 5000;
  });

  // Actions: a confirmation, then a POST with the page's token. Delegated: the buttons come and go with each poll.
  document.addEventListener('click', function (e) {
    var b = e.target.closest ? e.target.closest('button[data-action]') : null;
    if (!b) return;
    e.preventDefault();
    if (!window.confirm(b.getAttribute('data-confirm'))) return;
    var meta = document.querySelector('meta[name="turnout-csrf"]');
    b.disabled = true;
    fetch(b.getAttribute('data-action'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-Turnout-Csrf': meta ? meta.content : '' }
    }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    }).then(function (r) {
      var out = document.getElementById('outcome') || document.createElement('p');
      out.id = 'outcome';
      out.className = r.status === 200 ? 'outcome ok' : 'outcome error';
      out.textContent = r.status === 200 ? 'Done: ' + b.textContent.replace('…', '') + ' accepted.'
        : 'Refused: ' + (r.body.error || r.status);
      var main = document.querySelector('main');
      main.insertBefore(out, main.firstChild);
      b.disabled = false;
    }).catch(function (err) {
      conn(false, 'control plane unreachable');
      b.disabled = false;
    });
  });

  // Charts of the migration page: lag (bytes, seconds) and WAL generated vs replayed, from /v1/migrations/ID/series.
  function charts() {
    var box = document.querySelector('.charts[data-series]');
    if (!box || typeof uPlot === 'undefined') return;
    var url = box.getAttribute('data-series');
    var width = Math.min(560, Math.max(300, (box.clientWidth || 1100) / 2 - 24));
    var lag = null, wal = null;
    function size(x) {
      if (x == null) return '';
      var a = Math.abs(x);
      return a >= 1048576 ? (x / 1048576).toFixed(1) + ' MiB' : a >= 1024 ? (x / 1024).toFixed(1) + ' KiB'
        : x.toFixed(0) + ' B';
    }
    function mib(u, v) { return v.map(size); }
    var x = { time: true };
    function update() {
      fetch(url, { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (s) {
        var p = s.points || [];
        if (p.length === 1) { // one point yet: a minute's axis, not years
          p = [{ at: p[0].at - 60, lagBytes: null, delaySeconds: null, walPerSecond: null, replayPerSecond: null }, p[0]];
        }
        var t = p.map(function (x) { return x.at; });
        var lagData = [t, p.map(function (x) { return x.lagBytes; }), p.map(function (x) { return x.delaySeconds; })];
        var walData = [t, p.map(function (x) { return x.walPerSecond; }), p.map(function (x) { return x.replayPerSecond; })];
        if (!lag) {
          lag = new uPlot({ width: width, height: 200, scales: { x: x }, series: [{}, { label: 'lag', stroke: '#c0392b', scale: 'b', value: function (u, v) { return size(v); } },
            { label: 'replay delay (s)', stroke: '#2c7fb8', scale: 's' }],
            axes: [{}, { scale: 'b', values: mib }, { scale: 's', side: 1, grid: { show: false } }] }, lagData,
            document.getElementById('chart-lag'));
          wal = new uPlot({ width: width, height: 200, scales: { x: x }, series: [{}, { label: 'generated', stroke: '#e67e22', scale: 'b', value: function (u, v) { return size(v) + '/s'; } },
            { label: 'replayed', stroke: '#27ae60', scale: 'b', value: function (u, v) { return size(v) + '/s'; } }], axes: [{}, { scale: 'b', values: mib }] }, walData,
            document.getElementById('chart-wal'));
        } else {
          lag.setData(lagData);
          wal.setData(walData);
        }
      }).catch(function () { /* the live indicator says it */ });
    }
    update();
    setInterval(update, 2000);
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', charts);
  } else {
    charts();
  }
  window.turnoutConsoleLoadedAt = Date.now();
})();
