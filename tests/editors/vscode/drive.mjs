// Drives VS Code (code-server) in headless Chromium with the pilotfish extension installed.
// PF_SCENARIO=real (the real server and model): open report.py, type, wait for the ghost text,
//   screenshot, Tab, save, "pilotfish: Show status".
// PF_SCENARIO=fake (tests/editors/fake_server.py): also next candidate, Escape, the commands
//   (explain, reindex, disable) and the message for a missing server.
// Input (env): PF_URL, PF_TOOLS (folder with node_modules/playwright-core), PF_SCREENSHOT,
// PF_FAILURE_SCREENSHOT, PF_OUT (JSON result), PF_TYPED, PF_TIMEOUT_MS, PF_SETTINGS (user
// settings.json, for the missing-server step).
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";

const require = createRequire(process.env.PF_TOOLS + "/node_modules/");
const { chromium } = require("playwright-core");

const scenario = process.env.PF_SCENARIO ?? "real";
const timeout = Number(process.env.PF_TIMEOUT_MS ?? 180000);
const result = { steps: [] };
const step = (name, extra = {}) => {
  result.steps.push({ name, t: Date.now(), ...extra });
  console.log(`[drive] ${name} ${JSON.stringify(extra)}`);
};

const GHOST = ".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text";

/** The ghost text: inline decorations (one span per token), then the lines of its view zone. */
async function ghostText(page) {
  return page.evaluate(() => {
    const clean = (t) => (t ?? "").replace(/\u00a0/g, " ");
    const first = [...document.querySelectorAll(".monaco-editor .ghost-text-decoration")]
      .map((e) => clean(e.textContent))
      .join("");
    const rest = [...document.querySelectorAll(".monaco-editor .ghost-text .view-line")].map((e) =>
      clean(e.textContent),
    );
    return [first, ...rest].join("\n");
  });
}

async function waitGhost(page, expected, ms) {
  const deadline = Date.now() + ms;
  let text = "";
  while (Date.now() < deadline) {
    text = await ghostText(page);
    if (expected === undefined ? text.trim() !== "" : text === expected) {
      return text;
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`ghost text ${expected === undefined ? "never shown" : `not ${JSON.stringify(expected)}`}; last: ${JSON.stringify(text)}`);
}

async function palette(page, title) {
  await page.keyboard.press("Control+Shift+P");
  await page.waitForSelector(".quick-input-widget input", { timeout: 30000 });
  await page.keyboard.type(title, { delay: 15 });
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor({ timeout: 15000 });
  await page.keyboard.press("Enter");
}

async function toast(page, text, ms = 30000) {
  const item = page.locator(".notification-toast", { hasText: text }).first();
  await item.waitFor({ timeout: ms });
  return item.innerText();
}

const browser = await chromium.launch({
  executablePath: process.env.PF_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  page.on("pageerror", (e) => console.log("[page error]", e.message));
  await page.goto(process.env.PF_URL, { waitUntil: "domcontentloaded" });
  await page.waitForSelector(".monaco-workbench", { timeout: 120000 });
  step("workbench");

  // The status bar item appears when the extension activates.
  const statusItem = page.locator(".statusbar-item", { hasText: "pilotfish" }).first();
  await statusItem.waitFor({ timeout: 120000 });
  step("status item", { text: await statusItem.innerText() });
  // Every text the item shows from now on (indexing progress, loading, ready).
  result.statusTexts = [];
  const recordStatus = async () => {
    const text = (await statusItem.innerText().catch(() => "")).trim();
    if (text && result.statusTexts[result.statusTexts.length - 1] !== text) {
      result.statusTexts.push(text);
    }
    return text;
  };
  const statusPoller = setInterval(() => void recordStatus(), 100);

  await page.locator(".monaco-workbench").click({ position: { x: 640, y: 300 } }).catch(() => {});
  await page.keyboard.press("Control+P");
  await page.waitForSelector(".quick-input-widget input", { timeout: 30000 });
  await page.keyboard.type("report.py", { delay: 30 });
  await page.waitForSelector(".quick-input-list .monaco-list-row", { timeout: 30000 });
  await page.keyboard.press("Enter");
  const editor = page.locator(".editor-instance .monaco-editor .view-lines").first();
  await editor.waitFor({ timeout: 30000 });
  await page.waitForFunction(() => document.title.includes("report.py"), null, { timeout: 30000 });
  step("opened report.py");

  // "pilotfish: <model>" once the model is loaded (requests made while it loads get no items).
  const readyBy = Date.now() + 180000;
  for (;;) {
    const text = await recordStatus();
    if (/pilotfish: \S/.test(text) && !/loading|starting|indexing|error/i.test(text)) {
      break;
    }
    if (Date.now() > readyBy) {
      throw new Error(`the status bar never showed a loaded model: ${JSON.stringify(result.statusTexts)}`);
    }
    await page.waitForTimeout(100);
  }
  clearInterval(statusPoller);
  result.statusBarReady = await statusItem.innerText();
  step("ready", { text: result.statusBarReady });

  await editor.click();
  // report.py ends with a line break: Ctrl+End lands on the empty last line. editor.autoIndent
  // is "none", so the test types the indentation itself.
  await page.keyboard.press("Control+End");
  const started = Date.now();
  await page.keyboard.type(process.env.PF_TYPED, { delay: 40 });
  step("typed");

  await page.locator(GHOST).first().waitFor({ state: "visible", timeout });
  result.ghost = await waitGhost(page, undefined, 5000);
  await page.waitForTimeout(300);
  result.ghost = await ghostText(page);
  result.ghostSeconds = (Date.now() - started) / 1000;
  step("ghost text", { ghost: result.ghost, seconds: result.ghostSeconds });

  if (scenario === "fake") {
    await page.keyboard.press("Alt+BracketRight"); // next candidate
    result.nextGhost = await waitGhost(page, process.env.PF_SECOND, 10000);
    await page.keyboard.press("Alt+BracketLeft");
    await waitGhost(page, result.ghost, 10000);
    await page.keyboard.press("Escape"); // pilotfish.dismissInline -> completionDismissed
    await waitGhost(page, "", 10000);
    step("cycled and dismissed");
    await page.keyboard.press("Backspace");
    await page.keyboard.type("(", { delay: 40 });
    await waitGhost(page, result.ghost, 30000);
  }
  if (process.env.PF_SCREENSHOT) {
    await page.screenshot({ path: process.env.PF_SCREENSHOT });
    step("screenshot");
  }

  await page.keyboard.press("Tab");
  await page.waitForTimeout(500);
  result.ghostAfterAccept = await page.locator(".monaco-editor .ghost-text-decoration").count();
  await page.keyboard.press("Escape");
  await page.keyboard.press("Control+S");
  await page.waitForFunction(() => !document.querySelector(".tab.active.dirty"), null, { timeout: 15000 }).catch(() => {});
  step("accepted and saved");

  result.statusBar = await statusItem.innerText();
  await palette(page, "pilotfish: Show status");
  result.statusMessage = await toast(page, "pilotfish: model");
  step("status message", { text: result.statusMessage });

  if (scenario === "fake") {
    await palette(page, "pilotfish: Explain this completion's context");
    await page.locator(".monaco-editor .view-lines", { hasText: "Context of completion" }).first().waitFor({ timeout: 30000 });
    result.explanation = (
      await page.locator(".monaco-editor .view-lines", { hasText: "Context of completion" }).first().innerText()
    ).replace(/\u00a0/g, " ");
    step("explanation");
    await palette(page, "pilotfish: Reindex the workspace");
    result.reindexMessage = await toast(page, "reindexing");
    await palette(page, "pilotfish: Train an adapter on this repository's history");
    result.trainMessage = await toast(page, "training an adapter");
    await palette(page, "pilotfish: Choose the adapter");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "a1" }).first().waitFor({ timeout: 15000 });
    await page.keyboard.press("Enter");
    step("adapter chosen");

    // Hover over `Item` on line 3 (`from inventory import Item`), in the first editor group.
    await page.keyboard.press("Control+1");
    await page.keyboard.press("Control+P");
    await page.waitForSelector(".quick-input-widget input", { timeout: 30000 });
    await page.keyboard.type("report.py", { delay: 30 });
    await page.waitForSelector(".quick-input-list .monaco-list-row", { timeout: 30000 });
    await page.keyboard.press("Enter");
    await page.waitForTimeout(500);
    await page.keyboard.press("Control+G");
    await page.waitForSelector(".quick-input-widget input", { timeout: 30000 });
    await page.keyboard.type("3");
    await page.keyboard.press("Enter");
    await page.keyboard.press("End");
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("Control+K");
    await page.keyboard.press("Control+I");
    const hover = page.locator(".monaco-hover", { hasText: "one line of stock" }).first();
    await hover.waitFor({ timeout: 30000 });
    result.hover = (await hover.innerText()).replace(/\u00a0/g, " ");
    result.hoverLinks = await hover.locator("a").evaluateAll((links) => links.map((a) => a.getAttribute("data-href") ?? a.getAttribute("href")));
    step("hover", { text: result.hover, links: result.hoverLinks });
    await page.keyboard.press("Escape");

    await palette(page, "pilotfish: Disable completions");
    await page.locator(".statusbar-item", { hasText: "completions disabled" }).first().waitFor({ timeout: 30000 });
    await page.waitForTimeout(1000); // the settings change reaches the server
    step("disabled");

    // A missing server: changing pilotfish.server.* restarts it, and it is not there.
    // Edited in VS Code itself (Preferences: Open User Settings (JSON)), as a person would: the
    // file watcher can miss an outside write that closely follows VS Code's own.
    const settings = JSON.parse(readFileSync(process.env.PF_SETTINGS, "utf8"));
    settings["pilotfish.server.command"] = ["/nonexistent/pilotfish", "serve"];
    await palette(page, "Preferences: Open User Settings (JSON)");
    // VS Code 1.139 opens it in a modal editor over the workbench, focused.
    await page.locator(".monaco-editor .view-lines", { hasText: "pilotfish.server.command" }).first().waitFor({ timeout: 30000 });
    await page.waitForTimeout(500);
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(JSON.stringify(settings, null, 1));
    await page.keyboard.press("Control+S");
    result.missingMessage = await toast(page, "was not found", 30000).catch(() => undefined);
    if (!result.missingMessage) {
      throw new Error("no message about the missing server");
    }
    step("missing server message", { text: result.missingMessage });
  }
  result.ok = true;
} catch (error) {
  result.ok = false;
  result.error = String(error?.stack ?? error);
  console.log("[drive] failed:", result.error);
  if (page && process.env.PF_FAILURE_SCREENSHOT) {
    await page.screenshot({ path: process.env.PF_FAILURE_SCREENSHOT }).catch(() => {});
  }
} finally {
  writeFileSync(process.env.PF_OUT, JSON.stringify(result, null, 2));
  await browser.close();
}
