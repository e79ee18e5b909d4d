// Command lines for the integrated terminal. Kept free of the `vscode` module so that the tests
// can run it under plain Node.

/** The shells the extension opens its terminal with, and so knows how to quote for. */
export type Shell = 'posix' | 'powershell';

/** The shell the extension's terminal runs on `platform` (a `process.platform` value). */
export function shellFor(platform: string): { kind: Shell; path: string } {
  return platform === 'win32'
    ? { kind: 'powershell', path: 'powershell.exe' }
    : { kind: 'posix', path: '/bin/sh' };
}

/**
 * Quotes one argument so that `shell` passes it to the program unchanged: POSIX single quotes
 * (a `'` becomes `'\''`), PowerShell single quotes (a `'` and its typographic variants are doubled).
 * Nothing inside single quotes is expanded by either shell: no `$`, backtick, glob or newline.
 */
export function quote(arg: string, shell: Shell): string {
  if (shell === 'posix') {
    return `'${arg.replace(/'/g, `'\\''`)}'`;
  }
  return `'${arg.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

/** The command line that runs `program` with `args` in `shell`. */
export function commandLine(program: string, args: readonly string[], shell: Shell): string {
  const words = [program, ...args].map((a) => quote(a, shell));
  // PowerShell treats a quoted first word as a string, not a command, without the call operator.
  return shell === 'powershell' ? `& ${words.join(' ')}` : words.join(' ');
}

/** The command line that makes `folder` the current directory of `shell`. */
export function cdLine(folder: string, shell: Shell): string {
  return shell === 'powershell'
    ? `Set-Location -LiteralPath ${quote(folder, shell)}`
    : `cd -- ${quote(folder, shell)}`;
}

/** The arguments of `tbt` that run one test of one suite file. */
export function runTestArgs(file: string, test: string): string[] {
  return ['run', '--test', test, file];
}
