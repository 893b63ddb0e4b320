/**
 * The /docs page: plain HTML, one script and one style sheet, all from this origin, so that
 * the page works under DOCS_CSP (no inline code, no other host). The script reads
 * /docs/openapi.json and writes it out with textContent only (nothing from the document is
 * ever parsed as HTML).
 */

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meiduo-users API</title>
<link rel="stylesheet" href="/docs/docs.css">
<script src="/docs/docs.js" defer></script>
</head>
<body>
<header><h1>meiduo-users API</h1><p><a href="/docs/openapi.json">openapi.json</a></p></header>
<main id="api"><p>Loading…</p></main>
</body>
</html>
`;

export const DOCS_CSS = `body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:0 16px;color:#222}
h1{margin:24px 0 4px}h2{border-bottom:1px solid #ddd;margin-top:32px}
details{border:1px solid #e3e3e3;border-radius:6px;margin:8px 0;padding:6px 10px}
summary{cursor:pointer}code,pre{font:13px/1.4 ui-monospace,monospace}
pre{background:#f6f6f6;overflow:auto;padding:8px;border-radius:4px}
.m{display:inline-block;min-width:64px;font-weight:700}.GET{color:#0b6}.POST{color:#06c}
.PUT{color:#a60}.DELETE{color:#c22}.PATCH{color:#80a}.ids{color:#555}
table{border-collapse:collapse}td,th{border:1px solid #e3e3e3;padding:2px 8px;text-align:left}
`;

export const DOCS_JS = `'use strict';
(function () {
  var root = document.getElementById('api');
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function json(value) { return el('pre', JSON.stringify(value, null, 2)); }
  function render(doc) {
    root.textContent = '';
    var info = doc.info || {};
    root.appendChild(el('p', info.description || ''));
    var byTag = {};
    Object.keys(doc.paths || {}).sort().forEach(function (path) {
      var item = doc.paths[path];
      Object.keys(item).forEach(function (method) {
        var op = item[method];
        var tag = (op.tags && op.tags[0]) || 'other';
        (byTag[tag] = byTag[tag] || []).push({ path: path, method: method.toUpperCase(), op: op });
      });
    });
    Object.keys(byTag).sort().forEach(function (tag) {
      root.appendChild(el('h2', tag));
      byTag[tag].forEach(function (entry) {
        var box = el('details');
        var head = el('summary');
        head.appendChild(el('span', entry.method, 'm ' + entry.method));
        head.appendChild(el('code', entry.path));
        head.appendChild(document.createTextNode(' — ' + (entry.op.summary || '')));
        box.appendChild(head);
        var op = entry.op;
        if (op.description) box.appendChild(el('p', op.description));
        if (op.security) box.appendChild(el('p', 'Authorization: Bearer token (' + Object.keys(op.security[0]).join(', ') + ')'));
        if (op.parameters && op.parameters.length) {
          var table = el('table');
          var row = el('tr');
          ['in', 'name', 'required', 'schema'].forEach(function (h) { row.appendChild(el('th', h)); });
          table.appendChild(row);
          op.parameters.forEach(function (p) {
            var r = el('tr');
            r.appendChild(el('td', p.in));
            r.appendChild(el('td', p.name));
            r.appendChild(el('td', p.required ? 'yes' : 'no'));
            r.appendChild(el('td', JSON.stringify(p.schema || {})));
            table.appendChild(r);
          });
          box.appendChild(el('h4', 'Parameters'));
          box.appendChild(table);
        }
        if (op.requestBody) {
          box.appendChild(el('h4', 'Body'));
          var content = op.requestBody.content || {};
          Object.keys(content).forEach(function (type) {
            box.appendChild(el('p', type));
            box.appendChild(json(content[type].schema));
          });
        }
        box.appendChild(el('h4', 'Responses'));
        Object.keys(op.responses || {}).forEach(function (status) {
          var res = op.responses[status];
          box.appendChild(el('p', status + ': ' + (res.description || ''), 'ids'));
          var c = res.content || {};
          Object.keys(c).forEach(function (type) { box.appendChild(json(c[type].schema)); });
        });
        root.appendChild(box);
      });
    });
    document.body.setAttribute('data-rendered', 'yes');
  }
  fetch('/docs/openapi.json', { credentials: 'same-origin' })
    .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
    .then(render)
    .catch(function (err) { root.textContent = 'Could not load the API description: ' + err.message; });
})();
`;
