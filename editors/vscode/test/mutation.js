#!/usr/bin/env node
// Mutation check of the grammar tests: every rule of syntaxes/tbt.tmLanguage.json must be covered
// by an assertion in test/*.test.tbt. For each rule the grammar is broken in one way — the rule's
// regular expression made never to match, or one scope it gives renamed — and the test cases are
// run again through vscode-tmgrammar-test's own library; a mutant under which every test case
// still passes means a rule no test pins down, and the check fails naming it.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRegistryFromGrammars } = require('vscode-tmgrammar-test/dist/common/index');
const { parseGrammarTestCase, runGrammarTestCase } = require('vscode-tmgrammar-test/dist/unit/index');

const root = path.join(__dirname, '..');
const grammarPath = path.join(root, 'syntaxes', 'tbt.tmLanguage.json');
const original = JSON.parse(fs.readFileSync(grammarPath, 'utf8'));
const cases = fs
  .readdirSync(__dirname)
  .filter((f) => f.endsWith('.test.tbt'))
  .sort()
  .map((f) => ({ file: f, testCase: parseGrammarTestCase(fs.readFileSync(path.join(__dirname, f), 'utf8')) }));
if (cases.length === 0) {
  console.error('no test/*.test.tbt files');
  process.exit(2);
}

// Every rule object of the grammar with the JSON path that reaches it.
function rules(node, at, out) {
  if (Array.isArray(node)) {
    node.forEach((n, i) => rules(n, `${at}[${i}]`, out));
  } else if (node && typeof node === 'object') {
    if (typeof node.match === 'string' || typeof node.begin === 'string' || typeof node.name === 'string') {
      out.push(at);
    }
    for (const [k, v] of Object.entries(node)) {
      if (typeof v === 'object') rules(v, `${at}.${k}`, out);
    }
  }
  return out;
}

function get(obj, at) {
  // `at` is like `$.repository.let.captures.1` or `$.patterns[0]`.
  const parts = at.slice(1).match(/\.([^.[\]]+)|\[(\d+)\]/g) || [];
  return parts.reduce((o, p) => (p.startsWith('[') ? o[Number(p.slice(1, -1))] : o[p.slice(1)]), obj);
}

// The mutants: [description, mutate(grammar)].
const mutants = [];
for (const at of rules(original.repository, '$.repository', [])) {
  const rule = get(original, at);
  for (const key of ['match', 'begin']) {
    if (typeof rule[key] === 'string') {
      mutants.push([`${at}: ${key} never matches`, (g) => { get(g, at)[key] = '(?!)'; }]);
    }
  }
  for (const key of ['name', 'contentName']) {
    if (typeof rule[key] === 'string') {
      mutants.push([`${at}: ${key} "${rule[key]}" renamed`, (g) => { get(g, at)[key] = 'mutant.tbt'; }]);
    }
  }
}

async function passes(grammar) {
  const registry = createRegistryFromGrammars([
    { grammar: { scopeName: 'source.tbt', path: grammarPath }, content: JSON.stringify(grammar) },
  ]);
  for (const { testCase } of cases) {
    const failures = await runGrammarTestCase(registry, testCase);
    if (failures.length > 0) return false;
  }
  return true;
}

(async () => {
  if (!(await passes(original))) {
    console.error('the grammar tests fail on the unmutated grammar: run `npm run test:grammar`');
    process.exit(1);
  }
  const survivors = [];
  for (const [what, mutate] of mutants) {
    const grammar = structuredClone(original);
    mutate(grammar);
    if (await passes(grammar)) survivors.push(what);
  }
  if (survivors.length > 0) {
    console.error(`${survivors.length} of ${mutants.length} grammar mutants pass every test case (rules no assertion covers):`);
    for (const s of survivors) console.error(`  ${s}`);
    process.exit(1);
  }
  console.log(`grammar mutation check: all ${mutants.length} mutants caught by ${cases.length} test files`);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
