#!/usr/bin/env node
// Expands every snippet of snippets/tbt.json (each placeholder to its default, each choice to its
// first option) and assembles them into one suite, written to the path given (stdout without
// one). CI runs `tbt check` and `tbt fmt --check` on it, so a snippet that stops compiling or is
// not in the canonical layout fails the build. Fails itself if a snippet is left unused.
'use strict';
const fs = require('fs');
const path = require('path');

const snippets = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'snippets', 'tbt.json'), 'utf8'));
const used = new Set();

// Expands snippet `name`, indented by `indent`, with `names[n]` instead of placeholder n's default.
function expand(name, indent = '', names = {}) {
  const snippet = snippets[name];
  if (snippet === undefined) throw new Error(`no snippet "${name}"`);
  used.add(name);
  let text = snippet.body.join('\n');
  // Innermost placeholders first: `${1:span[${2:kind == server}]}`.
  for (let previous = ''; previous !== text; ) {
    previous = text;
    text = text
      .replace(/\$\{(\d+)\|([^,|}]*)(?:,[^,|}]*)*\|\}/g, (_, n, first) => names[n] ?? first)
      .replace(/\$\{(\d+):([^${}]*)\}/g, (_, n, value) => names[n] ?? value);
  }
  text = text.replace(/\$\d+/g, '');
  if (/\$\{/.test(text)) throw new Error(`snippet "${name}" did not expand: ${text}`);
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => indent + line)
    .join('\n');
}

const suite = [
  expand('matcher', '', { 1: 'orders', 2: 'route = null', 3: 'service == "orders", route == null or http.route == route' }),
  expand('service', '', { 1: 'shop' }),
  expand('test (inline)', '', { 1: 'inline' }),
  expand('test (steps)', '', { 1: 'steps' }),
  ['test one_step {', expand('step', '  '), '}'].join('\n'),
  [
    'test triggers {',
    '  step over_http {',
    expand('trigger http', '    '),
    expand('expect response', '    '),
    expand('expect spans', '    ', { 1: 'orders("/orders")' }),
    '  }',
    '  step over_grpc {',
    expand('trigger grpc', '    '),
    expand('expect no', '    '),
    expand('expect by', '    '),
    '  }',
    '  step process {',
    expand('trigger exec', '    '),
    '  }',
    '  step recorded {',
    expand('trigger trace', '    '),
    expand('expect trace', '    '),
    '  }',
    '}',
  ].join('\n'),
].join('\n\n') + '\n';

const unused = Object.keys(snippets).filter((name) => !used.has(name));
if (unused.length > 0) {
  console.error(`snippets not in the assembled suite: ${unused.join(', ')}`);
  process.exit(1);
}
if (process.argv[2] === undefined) {
  process.stdout.write(suite);
} else {
  fs.writeFileSync(process.argv[2], suite);
}
