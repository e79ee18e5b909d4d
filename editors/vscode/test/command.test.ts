// Unit tests of src/command.ts: the command lines the tbt.runTest command types into its
// terminal. POSIX quoting is checked by running the line through every POSIX shell installed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { cdLine, commandLine, quote, runTestArgs, shellFor } from '../src/command';

const nasty = [
  'plain',
  'with space',
  "it's",
  "''",
  '"double" quotes',
  '$HOME ${HOME} $(echo no) `echo no`',
  '*.tbt ? [a-z] ~',
  'semi; colon && and | pipe > redirect',
  'back\\slash \\n \\',
  'new\nline\ttab',
  '-starts-with-dash',
  'ünïcødé ✓ “curly” ‘quotes’',
  '',
];

// Every POSIX shell present: sh is what the terminal uses; the others read the same quoting.
const shells = ['/bin/sh', '/bin/dash', '/bin/bash', '/usr/bin/zsh', '/bin/zsh'].filter((s) => existsSync(s));

test('a POSIX shell passes every quoted argument through unchanged', () => {
  assert.ok(shells.length > 0, 'no POSIX shell found');
  const script = 'process.stdout.write(JSON.stringify(process.argv.slice(1)))';
  for (const shell of shells) {
    const line = commandLine(process.execPath, ['-e', script, ...nasty], 'posix');
    const printed = execFileSync(shell, ['-c', line], { encoding: 'utf8', env: { HOME: '/nonexistent' } });
    assert.deepEqual(JSON.parse(printed), nasty, `through ${shell}`);
  }
});

test('cd into a folder with special characters', () => {
  for (const shell of shells) {
    const folder = "/tmp/tbt dir's $x";
    const line = `${cdLine(folder, 'posix')} 2>/dev/null; printf %s "$PWD"`;
    execFileSync('mkdir', ['-p', folder]);
    const printed = execFileSync(shell, ['-c', line], { encoding: 'utf8' });
    assert.equal(printed, folder, `through ${shell}`);
  }
});

test('PowerShell: single quotes, quotes doubled, call operator first', () => {
  assert.equal(quote("it's", 'powershell'), "'it''s'");
  assert.equal(quote('‘a’', 'powershell'), "'‘‘a’’'");
  assert.equal(quote('$env:HOME `n', 'powershell'), "'$env:HOME `n'");
  assert.equal(
    commandLine('C:\\Program Files\\tbt.exe', runTestArgs('C:\\suites\\a b.tbt', 'place_order'), 'powershell'),
    "& 'C:\\Program Files\\tbt.exe' 'run' '--test' 'place_order' 'C:\\suites\\a b.tbt'",
  );
  assert.equal(cdLine("C:\\it's", 'powershell'), "Set-Location -LiteralPath 'C:\\it''s'");
});

test('tbt run --test NAME FILE, and the shell for each platform', () => {
  assert.deepEqual(runTestArgs('/s/a.tbt', 'checkout'), ['run', '--test', 'checkout', '/s/a.tbt']);
  assert.equal(shellFor('linux').kind, 'posix');
  assert.equal(shellFor('darwin').kind, 'posix');
  assert.equal(shellFor('win32').kind, 'powershell');
});
