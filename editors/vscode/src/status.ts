/** The status bar item: model, indexing progress, adapter and recent latency from `pilotfish/status`. */
import * as vscode from "vscode";

/** The object of `pilotfish.status` and of the `pilotfish/status` notification (fields optional). */
export interface Status {
  model?: string;
  backend?: string;
  device?: string;
  adapter?: string | null;
  loaded?: boolean;
  error?: string | null;
  enabled?: boolean;
  index?: { state?: string; files?: number; chunks?: number; percentage?: number; message?: string };
  latency?: { p50Ms?: number | null; p95Ms?: number | null };
  cacheHitRate?: number;
  completions?: { p50Ms?: number | null; p95Ms?: number | null; cacheHitRate?: number };
  [key: string]: unknown;
}

function latency(status: Status): { p50?: number | null; p95?: number | null; hit?: number } {
  return {
    p50: status.latency?.p50Ms ?? status.completions?.p50Ms,
    p95: status.latency?.p95Ms ?? status.completions?.p95Ms,
    hit: status.cacheHitRate ?? status.completions?.cacheHitRate,
  };
}

function shortModel(model?: string): string {
  if (!model) {
    return "";
  }
  const base = model.split(/[\\/]/).filter(Boolean).pop() ?? model;
  return base.replace(/\.gguf$/, "");
}

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  last?: Status;

  constructor() {
    this.item = vscode.window.createStatusBarItem("pilotfish.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "pilotfish";
    this.item.command = "pilotfish.showStatus";
    this.starting();
    this.item.show();
  }

  starting(): void {
    this.item.text = "$(loading~spin) pilotfish";
    this.item.tooltip = "pilotfish: starting the server";
    this.item.backgroundColor = undefined;
  }

  failed(message: string): void {
    this.item.text = "$(error) pilotfish";
    this.item.tooltip = `pilotfish: ${message}\nClick for status and log.`;
    this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
  }

  update(status: Status): void {
    this.last = status;
    const { p50, p95, hit } = latency(status);
    const index = status.index ?? {};
    let icon = "$(sparkle)";
    let detail = shortModel(status.model);
    if (status.error) {
      icon = "$(warning)";
      detail = "model error";
    } else if (status.enabled === false) {
      icon = "$(circle-slash)";
      detail = "off";
    } else if (index.state === "indexing") {
      icon = "$(sync~spin)";
      const pct = typeof index.percentage === "number" ? ` ${Math.round(index.percentage)}%` : "";
      const files = typeof index.files === "number" ? ` (${index.files} files)` : "";
      detail = `indexing${pct}${files}`;
    } else if (status.loaded === false) {
      icon = "$(loading~spin)";
      detail = "loading model";
    } else if (typeof p50 === "number") {
      detail += ` · ${Math.round(p50)} ms`;
    }
    this.item.text = `${icon} pilotfish${detail ? ": " + detail : ""}`;
    this.item.backgroundColor = status.error
      ? new vscode.ThemeColor("statusBarItem.warningBackground")
      : undefined;
    const lines = [
      `**pilotfish** ${status.enabled === false ? "(completions disabled)" : ""}`,
      "",
      `Model: ${status.model ?? "?"} (${status.backend ?? "?"} on ${status.device ?? "?"})`,
      `Adapter: ${status.adapter ?? "none"}`,
      `Index: ${index.state ?? "?"}${index.files !== undefined ? `, ${index.files} files` : ""}${
        index.chunks !== undefined ? `, ${index.chunks} chunks` : ""
      }`,
      `Latency: p50 ${p50 ?? "–"} ms, p95 ${p95 ?? "–"} ms${typeof hit === "number" ? `, cache hits ${Math.round(hit * 100)}%` : ""}`,
    ];
    if (status.error) {
      lines.push(`Error: ${status.error}`);
    }
    lines.push("", "Click for details.");
    this.item.tooltip = new vscode.MarkdownString(lines.join("  \n"));
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** A one-line summary, for messages. */
export function summary(status: Status): string {
  const { p50, p95 } = latency(status);
  const index = status.index ?? {};
  return [
    `model ${status.model ?? "?"} (${status.backend ?? "?"}, ${status.device ?? "?"})`,
    `adapter ${status.adapter ?? "none"}`,
    `index ${index.state ?? "?"}${index.files !== undefined ? ` (${index.files} files, ${index.chunks ?? 0} chunks)` : ""}`,
    `latency p50 ${p50 ?? "–"} ms / p95 ${p95 ?? "–"} ms`,
    status.enabled === false ? "completions disabled" : "completions enabled",
  ].join(" · ");
}
