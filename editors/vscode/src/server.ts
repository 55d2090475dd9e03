/** Finds the command that starts `pilotfish serve`, and explains the fix when there is none. */
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";
import { ServerSettings } from "./settings";

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from, for the log. */
  source: string;
}

const EXE = process.platform === "win32" ? ".exe" : "";
const BIN = process.platform === "win32" ? "Scripts" : "bin";

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name + EXE))) {
      return path.join(dir, name + EXE);
    }
  }
  return undefined;
}

function expand(value: string, folder?: string): string {
  return value
    .replace(/\$\{workspaceFolder\}/g, folder ?? "")
    .replace(/^~(?=$|\/)/, process.env.HOME ?? "~");
}

/** The first of: `server.command`, `server.python`, a workspace virtual environment, the PATH. */
export function resolveServer(settings: ServerSettings): ServerCommand | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (settings.command.length > 0) {
    const [command, ...args] = settings.command.map((part) => expand(part, folder));
    return { command, args, source: "pilotfish.server.command" };
  }
  if (settings.python) {
    const python = expand(settings.python, folder);
    return { command: python, args: ["-m", "pilotfish.lsp_server", "serve"], source: "pilotfish.server.python" };
  }
  for (const venv of [".venv", "venv"]) {
    const candidate = folder && path.join(folder, venv, BIN, "pilotfish" + EXE);
    if (candidate && isExecutable(candidate)) {
      return { command: candidate, args: ["serve"], source: `workspace ${venv}` };
    }
  }
  const found = onPath("pilotfish");
  return found ? { command: found, args: ["serve"], source: "PATH" } : undefined;
}

/** True when an explicitly configured program does not exist (a bare name is looked up at spawn). */
export function missingProgram(server: ServerCommand): boolean {
  const program = server.command;
  if (program.includes("/") || program.includes("\\")) {
    return !isExecutable(program);
  }
  return onPath(program) === undefined;
}

export const INSTALL_HINT =
  "Install it into a Python 3.11+ environment (`pip install pilotfish`, or `pip install -e .` in a " +
  "checkout), then set `pilotfish.server.python` to that environment's python, or " +
  "`pilotfish.server.command` to [\"/path/to/pilotfish\", \"serve\"].";

export async function explainMissing(server: ServerCommand | undefined, log: vscode.OutputChannel) {
  const what = server
    ? `The pilotfish server command \`${server.command}\` (from ${server.source}) was not found.`
    : "The pilotfish language server (`pilotfish serve`) was not found in the workspace's .venv or on the PATH.";
  log.appendLine(`${what} ${INSTALL_HINT}`);
  const choice = await vscode.window.showErrorMessage(`${what} ${INSTALL_HINT}`, "Open Settings", "Show Log");
  if (choice === "Open Settings") {
    await vscode.commands.executeCommand("workbench.action.openSettings", "pilotfish.server");
  } else if (choice === "Show Log") {
    log.show();
  }
}
