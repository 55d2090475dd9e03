/** Starts `pilotfish serve` with VS Code's language client and wires commands, status and settings. */
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import { explainMissing, missingProgram, resolveServer } from "./server";
import { clientSettings, serverOptions } from "./settings";
import { StatusBar, Status, summary } from "./status";

const ACCEPTED = "pilotfish.completionAccepted";
const DISMISSED = "pilotfish.completionDismissed";

let client: LanguageClient | undefined;
let statusBar: StatusBar;
let log: vscode.LogOutputChannel;
let extension: vscode.Extension<unknown>;

/** Completion shown last (the one "Explain" and dismissal tracking refer to). */
let shownId: string | undefined;

/** Explanations shown as read-only documents (no "save?" prompt on close). */
const EXPLAIN_SCHEME = "pilotfish-explain";
const explanations = new Map<string, string>();
const explanationChanged = new vscode.EventEmitter<vscode.Uri>();
/** Ids already reported as accepted or dismissed (each is reported once). */
let settledIds = new Set<string>();

function idOf(args: unknown[] | undefined): string | undefined {
  const first = args?.[0] as { id?: unknown } | undefined;
  return typeof first?.id === "string" ? first.id : undefined;
}

async function execute<T>(command: string, args: unknown[] = []): Promise<T | undefined> {
  if (!client || client.state !== State.Running) {
    void vscode.window.showWarningMessage("pilotfish: the server is not running. See the pilotfish output channel.");
    return undefined;
  }
  return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }) as Promise<T>;
}

function reportDismissed(id: string | undefined): void {
  if (id && !settledIds.has(id)) {
    settledIds.add(id);
    void execute(DISMISSED, [{ id }]).catch(() => undefined);
  }
}

/**
 * Tells the server the previous suggestion was not taken once an answer no longer offers it
 * (VS Code's API does not report dismissals; typing through keeps the same id).
 */
function noteShown(ids: string[]): void {
  if (shownId && !ids.includes(shownId)) {
    reportDismissed(shownId);
  }
  if (ids.length > 0) {
    shownId = ids[0];
  }
  settledIds = new Set([...settledIds].slice(-50));
}

function clientOptions(): LanguageClientOptions {
  return {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    outputChannel: log,
    initializationOptions: serverOptions(extension),
    initializationFailedHandler: (error) => {
      statusBar.failed(`the server failed to initialize: ${error}`);
      return false;
    },
    middleware: {
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        const result = await next(document, position, context, token);
        const items = Array.isArray(result) ? result : (result?.items ?? []);
        const ids = items
          .map((item) => idOf(item.command?.arguments))
          .filter((id): id is string => id !== undefined);
        noteShown(ids);
        return result;
      },
      executeCommand: async (command, args, next) => {
        if (command === ACCEPTED) {
          const id = idOf(args);
          if (id) {
            settledIds.add(id);
          }
        }
        return next(command, args);
      },
      workspace: {
        // The server may pull its section; answer with the same tree as initializationOptions.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) {
            return result;
          }
          return params.items.map((item, i) =>
            item.section === "pilotfish" ? serverOptions(extension) : result[i],
          );
        },
      },
    },
  };
}

async function start(): Promise<void> {
  const settings = clientSettings();
  const server = resolveServer(settings);
  if (!server || missingProgram(server)) {
    statusBar.failed("server not found");
    await explainMissing(server, log);
    return;
  }
  log.appendLine(`Starting ${server.command} ${server.args.join(" ")} (from ${server.source})`);
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  // No `transport`: plain stdio (TransportKind.stdio would append `--stdio` to the arguments).
  const run = { command: server.command, args: server.args, options: { cwd } };
  const serverOptions: ServerOptions = { run, debug: run };
  client = new LanguageClient("pilotfish", "pilotfish", serverOptions, clientOptions());
  client.onDidChangeState((event) => {
    if (event.newState === State.Stopped) {
      statusBar.failed("the server stopped");
    }
  });
  // Registered before start: the server pushes its first status during initialization.
  client.onNotification("pilotfish/status", (status: Status) => {
    const wasLoaded = statusBar.last?.loaded;
    statusBar.update(status);
    // Requests made while the model loaded got no items: ask again once it is ready.
    if (status.loaded && wasLoaded === false && vscode.window.activeTextEditor) {
      void vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    }
  });
  statusBar.starting();
  try {
    await client.start();
  } catch (error) {
    statusBar.failed(`the server did not start: ${error}`);
    log.appendLine(`The server did not start: ${error}`);
    void vscode.window.showErrorMessage(
      `pilotfish: the server did not start (${server.command}). See the pilotfish output channel.`,
    );
    return;
  }
  const status = await execute<Status>("pilotfish.status").catch(() => undefined);
  if (status) {
    statusBar.update(status);
  }
}

async function stop(): Promise<void> {
  const old = client;
  client = undefined;
  if (old) {
    await old.stop().catch(() => undefined);
  }
}

async function showStatus(): Promise<void> {
  const status = await execute<Status>("pilotfish.status");
  if (!status) {
    log.show();
    return;
  }
  statusBar.update(status);
  log.appendLine(`Status: ${JSON.stringify(status, null, 2)}`);
  const choice = await vscode.window.showInformationMessage(`pilotfish: ${summary(status)}`, "Details", "Reindex");
  if (choice === "Details") {
    log.show(true);
  } else if (choice === "Reindex") {
    await reindex();
  }
}

async function reindex(): Promise<void> {
  const result = await execute<{ started?: boolean; reason?: string }>("pilotfish.reindex");
  if (result && result.started === false) {
    void vscode.window.showWarningMessage(`pilotfish: not reindexing: ${result.reason ?? "unknown reason"}`);
  } else if (result) {
    void vscode.window.showInformationMessage("pilotfish: reindexing the workspace");
  }
}

interface Explanation {
  id?: string;
  prompt_tokens?: number;
  context?: string;
  snippets?: { path?: string; start_line?: number; end_line?: number; source?: string; reason?: string; link?: string; text?: string }[];
  timings?: Record<string, number>;
  [key: string]: unknown;
}

/** Renders the explanation as Markdown with clickable `file:line` links. */
export function explanationMarkdown(explanation: Explanation): string {
  const out = [`# Context of completion \`${explanation.id ?? "?"}\``, ""];
  if (explanation.prompt_tokens !== undefined) {
    out.push(`Prompt: ${explanation.prompt_tokens} tokens.`, "");
  }
  if (explanation.context) {
    out.push(`Repository context: ${explanation.context}.`, "");
  }
  const snippets = explanation.snippets ?? [];
  out.push(`## ${snippets.length} retrieved snippet${snippets.length === 1 ? "" : "s"}`, "");
  snippets.forEach((s, i) => {
    const where = `${s.path ?? "?"}:${s.start_line ?? "?"}-${s.end_line ?? "?"}`;
    out.push(`${i + 1}. [${where}](${s.link ?? ""}) (${s.source ?? "?"}) ${s.reason ?? ""}`);
    if (s.text) {
      out.push("", "   ```", ...s.text.split("\n").map((line) => "   " + line), "   ```");
    }
  });
  if (explanation.timings) {
    out.push("", "## Timings (ms)", "");
    for (const [stage, ms] of Object.entries(explanation.timings)) {
      out.push(`- ${stage}: ${ms}`);
    }
  }
  return out.join("\n") + "\n";
}

async function explainCompletion(): Promise<void> {
  const explanation = await execute<Explanation | null>(
    "pilotfish.explainCompletion",
    shownId ? [{ id: shownId }] : [],
  );
  if (explanation === undefined) {
    return;
  }
  if (explanation === null) {
    void vscode.window.showInformationMessage("pilotfish: no completion to explain yet.");
    return;
  }
  // A read-only Markdown editor beside the code: its `file:line` links are clickable, and
  // "Markdown: Open Preview" renders it.
  const uri = vscode.Uri.from({ scheme: EXPLAIN_SCHEME, path: `/completion-${explanation.id ?? "latest"}.md` });
  explanations.set(uri.toString(), explanationMarkdown(explanation));
  explanationChanged.fire(uri);
  const document = await vscode.workspace.openTextDocument(uri);
  await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.Beside, preview: true });
}

async function setEnabled(enabled: boolean): Promise<void> {
  await execute("pilotfish.setEnabled", [enabled]);
  if (statusBar.last) {
    statusBar.update({ ...statusBar.last, enabled });
  }
  // Persist it; the server gets it again with the other settings.
  await vscode.workspace.getConfiguration("pilotfish").update("completion.enable", enabled, vscode.ConfigurationTarget.Global);
  void vscode.window.setStatusBarMessage(`pilotfish: completions ${enabled ? "enabled" : "disabled"}`, 3000);
}

interface Adapter {
  name: string;
  current?: boolean;
  manifest?: { metrics?: Record<string, unknown>; created_at?: string; [key: string]: unknown };
}

/** Starts `pilotfish.train`; progress arrives as `$/progress`, the result as a message. */
async function trainAdapter(): Promise<void> {
  const result = await execute<{ started?: boolean; reason?: string }>("pilotfish.train", [{}]);
  if (result?.started === false) {
    void vscode.window.showWarningMessage(`pilotfish: not training: ${result.reason ?? "unknown reason"}`);
  } else if (result) {
    void vscode.window.showInformationMessage(
      "pilotfish: training an adapter on this repository's history (progress in the status bar)",
    );
  }
}

async function cancelTraining(): Promise<void> {
  const result = await execute<{ cancelled?: boolean }>("pilotfish.cancelTraining");
  void vscode.window.showInformationMessage(
    result?.cancelled ? "pilotfish: training cancelled" : "pilotfish: no training to cancel",
  );
}

/** Lists the repository's adapters and switches to the one picked (or to none). */
async function chooseAdapter(): Promise<void> {
  const adapters = (await execute<Adapter[]>("pilotfish.adapters")) ?? [];
  const none = { label: "none", description: "the base model only", name: null as string | null };
  const items = [
    ...adapters.map((a) => ({
      label: a.name,
      description: [a.current ? "current" : "", a.manifest?.created_at ?? ""].filter(Boolean).join(" · "),
      detail: a.manifest?.metrics ? JSON.stringify(a.manifest.metrics) : undefined,
      name: a.name as string | null,
    })),
    none,
  ];
  const picked = await vscode.window.showQuickPick(items, { placeHolder: "Adapter to complete with" });
  if (!picked) {
    return;
  }
  const result = await execute<{ ok?: boolean; reason?: string }>("pilotfish.useAdapter", [{ name: picked.name }]);
  if (result?.ok === false) {
    void vscode.window.showWarningMessage(`pilotfish: ${result.reason ?? "could not switch the adapter"}`);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  extension = context.extension;
  log = vscode.window.createOutputChannel("pilotfish", { log: true });
  statusBar = new StatusBar();
  context.subscriptions.push(
    log,
    statusBar,
    explanationChanged,
    vscode.workspace.registerTextDocumentContentProvider(EXPLAIN_SCHEME, {
      onDidChange: explanationChanged.event,
      provideTextDocumentContent: (uri) => explanations.get(uri.toString()) ?? "",
    }),
  );
  const command = (name: string, fn: () => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(name, fn));
  // The language client registers every server command (pilotfish.reindex, ...) as a VS Code
  // command itself, so the extension's own commands never reuse a server command's name.
  command("pilotfish.reindexWorkspace", reindex);
  command("pilotfish.showStatus", showStatus);
  command("pilotfish.explainCompletionContext", explainCompletion);
  command("pilotfish.trainAdapter", trainAdapter);
  command("pilotfish.cancelAdapterTraining", cancelTraining);
  command("pilotfish.chooseAdapter", chooseAdapter);
  command("pilotfish.enable", () => setEnabled(true));
  command("pilotfish.disable", () => setEnabled(false));
  command("pilotfish.toggle", () => setEnabled(statusBar.last?.enabled === false));
  command("pilotfish.restart", async () => {
    await stop();
    await start();
  });
  command("pilotfish.showLog", () => log.show());
  command("pilotfish.dismissInline", async () => {
    reportDismissed(shownId);
    await vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
  });
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration("pilotfish")) {
        return;
      }
      if (event.affectsConfiguration("pilotfish.server") || !client) {
        await stop();
        await start();
      } else if (client.state === State.Running) {
        await client.sendNotification(DidChangeConfigurationNotification.type, {
          settings: { pilotfish: serverOptions(extension) },
        });
      }
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}
