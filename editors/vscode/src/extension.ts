// The tbt extension: starts the language server (`tbt lsp` over stdio) and runs the tests the
// server's "Run test" code lenses point at (`tbt.runTest`) in a terminal.
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';
import { cdLine, commandLine, runTestArgs, shellFor } from './command';

const SERVER_NAME = 'tbt Language Server';

let client: LanguageClient | undefined;
let output: vscode.OutputChannel;
let traceOutput: vscode.OutputChannel;
let terminal: vscode.Terminal | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel(SERVER_NAME);
  traceOutput = vscode.window.createOutputChannel(`${SERVER_NAME} Trace`);
  context.subscriptions.push(
    output,
    traceOutput,
    vscode.commands.registerCommand('tbt.restartServer', restartServer),
    vscode.commands.registerCommand('tbt.showOutput', () => output.show(true)),
    vscode.commands.registerCommand('tbt.runTest', runTest),
    vscode.window.onDidCloseTerminal((closed) => {
      if (closed === terminal) terminal = undefined;
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration('tbt.server.path') || e.affectsConfiguration('tbt.server.extraArgs')) {
        await restartServer();
      }
    }),
  );
  await startServer();
}

export async function deactivate(): Promise<void> {
  await stopServer();
}

/** The configured `tbt` binary, with `~` and `${workspaceFolder}` expanded. */
function tbtPath(): string {
  const configured = vscode.workspace.getConfiguration('tbt').get<string>('server.path', 'tbt').trim() || 'tbt';
  let expanded = configured;
  if (expanded === '~' || expanded.startsWith('~/')) {
    expanded = path.join(os.homedir(), expanded.slice(1));
  }
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (folder !== undefined) {
    expanded = expanded.replace(/\$\{workspaceFolder\}/g, folder);
  }
  return expanded;
}

async function startServer(): Promise<void> {
  const command = tbtPath();
  const extraArgs = vscode.workspace.getConfiguration('tbt').get<string[]>('server.extraArgs', []);
  const args = ['lsp', ...extraArgs];
  const serverOptions: ServerOptions = {
    command,
    args,
    transport: TransportKind.stdio,
    options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'tbt' },
      { scheme: 'untitled', language: 'tbt' },
    ],
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher('**/*.tbt'),
    },
    outputChannel: output,
    traceOutputChannel: traceOutput,
  };
  // The id `tbt` makes the client read the `tbt.trace.server` setting.
  const started = new LanguageClient('tbt', SERVER_NAME, serverOptions, clientOptions);
  output.appendLine(`starting ${[command, ...args].join(' ')}`);
  try {
    await started.start();
    client = started;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    output.appendLine(`could not start the language server: ${message}`);
    const choice = await vscode.window.showErrorMessage(
      `tbt: could not start \`${command} lsp\` (${message}). Set "tbt.server.path" to the tbt binary.`,
      'Open Settings',
      'Show Output',
    );
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'tbt.server');
    } else if (choice === 'Show Output') {
      output.show(true);
    }
  }
}

async function stopServer(): Promise<void> {
  const running = client;
  client = undefined;
  if (running !== undefined) {
    try {
      await running.stop();
    } catch (error) {
      output.appendLine(`stopping the language server: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

async function restartServer(): Promise<void> {
  await stopServer();
  await startServer();
}

/**
 * `tbt.runTest FILE TEST` (the arguments of the server's "Run test" lens): runs
 * `tbt run --test TEST FILE` in the tbt terminal, from the file's workspace folder. Without
 * arguments it asks for a test of the active `.tbt` file.
 */
async function runTest(file?: unknown, test?: unknown): Promise<void> {
  let suite = typeof file === 'string' ? file : undefined;
  let name = typeof test === 'string' ? test : undefined;
  if (suite === undefined) {
    const document = vscode.window.activeTextEditor?.document;
    if (document === undefined || document.languageId !== 'tbt' || document.isUntitled) {
      await vscode.window.showErrorMessage('tbt: open a saved .tbt file to run one of its tests.');
      return;
    }
    suite = document.uri.fsPath;
  }
  if (name === undefined) {
    name = await vscode.window.showInputBox({
      title: 'tbt: run test',
      prompt: `Name of the test of ${path.basename(suite)} to run`,
      validateInput: (value) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(value) ? undefined : 'a test name is an identifier'),
    });
    if (name === undefined) return;
  }
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(suite))?.uri.fsPath ?? path.dirname(suite);
  const shell = shellFor(process.platform);
  if (terminal === undefined || terminal.exitStatus !== undefined) {
    terminal?.dispose();
    terminal = vscode.window.createTerminal({ name: 'tbt', shellPath: shell.path, cwd: folder });
  }
  terminal.show(true);
  // A terminal is reused across folders: change into this one first.
  terminal.sendText(cdLine(folder, shell.kind), true);
  terminal.sendText(commandLine(tbtPath(), runTestArgs(suite, name), shell.kind), true);
}
