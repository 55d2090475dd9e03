/** Reads pilotfish's settings and shapes them as the server's camelCase tree. */
import * as vscode from "vscode";

/** Settings only the client uses; the server rejects unknown keys, so they are never sent. */
const CLIENT_ONLY = ["server.", "trace."];

export interface ServerSettings {
  command: string[];
  python: string;
}

/** Dotted keys (without the `pilotfish.` prefix) of every setting the extension contributes. */
function contributedKeys(extension: vscode.Extension<unknown>): string[] {
  const props = extension.packageJSON?.contributes?.configuration?.properties ?? {};
  return Object.keys(props)
    .filter((key) => key.startsWith("pilotfish."))
    .map((key) => key.slice("pilotfish.".length));
}

/** The nested settings the server expects, e.g. `{ model: { name }, completion: { maxTokens } }`. */
export function serverOptions(
  extension: vscode.Extension<unknown>,
  scope?: vscode.ConfigurationScope,
): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration("pilotfish", scope);
  const tree: Record<string, unknown> = {};
  for (const key of contributedKeys(extension)) {
    if (CLIENT_ONLY.some((prefix) => key.startsWith(prefix))) {
      continue;
    }
    const parts = key.split(".");
    let node = tree;
    for (const part of parts.slice(0, -1)) {
      node = (node[part] ??= {}) as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = config.get(key);
  }
  return tree;
}

export function clientSettings(scope?: vscode.ConfigurationScope): ServerSettings {
  const config = vscode.workspace.getConfiguration("pilotfish", scope);
  return {
    command: config.get<string[]>("server.command") ?? [],
    python: config.get<string>("server.python") ?? "",
  };
}
