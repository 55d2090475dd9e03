// Drives VS Code (code-server) in headless Chromium: opens report.py, types, waits for pilotfish's
// ghost text, takes a screenshot, accepts with Tab, saves, runs "pilotfish: Show status".
// Input (env): PF_URL, PF_TOOLS (folder with node_modules/playwright-core), PF_SCREENSHOT, PF_OUT
// (JSON result file), PF_TYPED (text typed on the new line), PF_TIMEOUT_MS.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";

const require = createRequire(process.env.PF_TOOLS + "/node_modules/");
const { chromium } = require("playwright-core");

const timeout = Number(process.env.PF_TIMEOUT_MS ?? 180000);
const result = { steps: [] };
const step = (name, extra = {}) => {
  result.steps.push({ name, t: Date.now(), ...extra });
  console.log(`[drive] ${name} ${JSON.stringify(extra)}`);
};

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

  // Wait for the status bar item: the extension is active and the server answered.
  const statusItem = page.locator(".statusbar-item", { hasText: "pilotfish" }).first();
  await statusItem.waitFor({ timeout: 120000 });
  step("status item", { text: await statusItem.innerText() });

  // Open report.py with Quick Open.
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

  // Wait for the model to load (requests made while it loads get no items).
  await page
    .waitForFunction(
      () => {
        const items = [...document.querySelectorAll(".statusbar-item")].map((e) => e.textContent ?? "");
        const item = items.find((t) => t.includes("pilotfish"));
        // "pilotfish: <model>" once the model is loaded (no detail while starting or failed).
        return item && /pilotfish: \S/.test(item) && !/loading|starting|indexing|error/i.test(item);
      },
      null,
      { timeout: 180000 },
    )
    .catch(async () => {
      throw new Error(`the status bar never showed a loaded model: "${await statusItem.innerText()}"`);
    });
  step("ready", { text: await statusItem.innerText() });

  await editor.click();
  await page.keyboard.press("Control+End");
  // report.py ends with a line break: Ctrl+End lands on the empty last line. editor.autoIndent
  // is "none", so the test types the indentation itself.
  const started = Date.now();
  await page.keyboard.type(process.env.PF_TYPED, { delay: 40 });
  step("typed");

  const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text").first();
  await ghost.waitFor({ state: "visible", timeout });
  await page.waitForTimeout(500);
  // The first line is inline decorations (one span per token); further lines are a view zone.
  result.ghost = await page.evaluate(() => {
    const clean = (t) => (t ?? "").replace(/\u00a0/g, " ");
    const first = [...document.querySelectorAll(".monaco-editor .ghost-text-decoration")]
      .map((e) => clean(e.textContent))
      .join("");
    const rest = [...document.querySelectorAll(".monaco-editor .ghost-text .view-line")].map((e) =>
      clean(e.textContent),
    );
    return [first, ...rest].join("\n");
  });
  result.ghostSeconds = (Date.now() - started) / 1000;
  step("ghost text", { ghost: result.ghost, seconds: result.ghostSeconds });
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
  // "pilotfish: Show status" from the command palette.
  await page.keyboard.press("Control+Shift+P");
  await page.waitForSelector(".quick-input-widget input", { timeout: 30000 });
  await page.keyboard.type("pilotfish: Show status", { delay: 20 });
  await page.waitForTimeout(500);
  await page.keyboard.press("Enter");
  const toast = page.locator(".notification-toast", { hasText: "pilotfish:" }).first();
  await toast.waitFor({ timeout: 30000 });
  result.statusMessage = await toast.innerText();
  step("status message", { text: result.statusMessage });
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
