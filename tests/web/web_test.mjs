// Drives the web page in Chromium (playwright-core, the system browser, no download):
// picks an image, runs a segmentation request against the real server, and checks that
// masks and boxes are drawn, that the per-instance toggle works, and that the page's RLE
// decoder paints exactly the pixels an RLE names. Run by scripts/test_web.sh:
//   node web_test.mjs BASE_URL IMAGE OUT_DIR
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [baseUrl, imagePath, outDir] = process.argv.slice(2);
if (!baseUrl || !imagePath || !outDir) {
  console.error("usage: node web_test.mjs BASE_URL IMAGE OUT_DIR");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}

// pycocotools' rleToString: run lengths -> compressed counts string (independent of app.js).
function rleToString(runs) {
  let s = "";
  for (let i = 0; i < runs.length; i++) {
    let x = runs[i];
    if (i > 2) x -= runs[i - 2];
    for (let more = true; more;) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

// Column-major runs of a row-major 0/1 mask, starting with a run of zeros.
function maskRuns(mask, h, w) {
  const runs = [];
  let current = 0, n = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = mask[y * w + x];
      if (v !== current) {
        runs.push(n);
        n = 0;
        current = v;
      }
      n++;
    }
  }
  runs.push(n);
  return runs;
}

// Pixels of the masks canvas with any colour, and those of a given colour.
async function maskPixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById("masks");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let any = 0;
    const set = [];
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] > 0) {
        any++;
        set.push(i / 4);
      }
    }
    return { any, set, width: c.width, height: c.height };
  });
}

async function boxPixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById("boxes");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
    return n;
  });
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "falcon-web-profile-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1200, height: 800 },
});
try {
  const page = context.pages()[0] || (await context.newPage());
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // Only the page and the API on the server are ever requested.
  const foreign = [];
  page.on("request", (r) => !r.url().startsWith(baseUrl) && !r.url().startsWith("data:") && foreign.push(r.url()));

  await page.goto(baseUrl + "/");
  await page.waitForSelector('#health[data-state="ready"]', { timeout: 60000 });
  const tasks = await page.$$eval("#task option", (os) => os.map((o) => o.value));
  check(JSON.stringify(tasks) === JSON.stringify(["segmentation", "detection"]), `tasks from /v1/health: ${tasks}`);

  // --- A segmentation request through the UI ----------------------------------------
  await page.setInputFiles("#file", imagePath);
  await page.waitForSelector("#stage:not([hidden])");
  await page.selectOption("#task", "segmentation");
  await page.fill("#query", "the red circle");
  await page.click("#advanced summary");
  await page.fill("#min-size", "64");
  await page.fill("#max-size", "128");
  check(await page.isVisible("#forced"), "forced tokens field shown (server allows them)");
  await page.fill("#forced", "<|coord|>,<|size|>,<|seg|>,<|coord|>,<|size|>,<|seg|>,<|end_of_text|>");
  const answer = page.waitForResponse((r) => r.url().endsWith("/v1/predictions"));
  await page.click("#run");
  const response = await (await answer).json();
  await page.waitForSelector('body[data-state="done"]', { timeout: 120000 });

  const masks = response.masks || [];
  check(masks.length === 2, `two instances in the answer (${masks.length})`);
  check(masks.every((m) => m.rle && typeof m.rle.counts === "string"), "every instance has a COCO RLE mask");
  const instances = await page.$$eval("#instances li", (li) => li.length);
  check(instances === masks.length, `instance list shows ${instances}`);

  // The union of the masks' areas, from the answer itself.
  const [h, w] = [response.image_height, response.image_width];
  const union = new Uint8Array(h * w);
  for (const m of masks) {
    if (!m.rle || typeof m.rle.counts !== "string") continue;
    let pos = 0, i = 0;
    const s = m.rle.counts;
    const runs = [];
    for (let p = 0; p < s.length;) {  // rleFrString
      let x = 0, k = 0, more = 1;
      while (more) {
        const c = s.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = c & 0x20;
        p++;
        k++;
        if (!more && c & 0x10) x |= -1 << (5 * k);
      }
      if (runs.length > 2) x += runs[runs.length - 2];
      runs.push(x);
    }
    for (const n of runs) {
      if (i++ % 2) for (let j = pos; j < pos + n; j++) union[(j % h) * w + Math.floor(j / h)] = 1;
      pos += n;
    }
  }
  const expected = union.reduce((a, b) => a + b, 0);
  const drawn = await maskPixels(page);
  check(drawn.width === w && drawn.height === h, `mask canvas is ${drawn.width}x${drawn.height}`);
  check(expected > 0 && drawn.any === expected, `coloured mask pixels on the canvas: ${drawn.any} (masks cover ${expected})`);
  check((await boxPixels(page)) > 0, "boxes drawn");
  fs.mkdirSync(outDir, { recursive: true });
  await page.screenshot({ path: path.join(outDir, "segmentation.png"), fullPage: true });

  // Hiding the first instance leaves only the second mask.
  await page.click('#instances input[data-index="0"]');
  const afterToggle = await maskPixels(page);
  check(afterToggle.any < drawn.any, `toggling instance 1 off: ${drawn.any} -> ${afterToggle.any} pixels`);
  await page.click('#instances input[data-index="0"]');
  check((await maskPixels(page)).any === drawn.any, "toggling it back on restores it");

  const timings = await page.$$eval("#timings tr", (rows) => rows.map((r) => r.textContent));
  check(timings.some((t) => t.startsWith("prefill")) && timings.length >= 8, `timings shown (${timings.length} rows)`);

  // --- A bad request shows the API's error -------------------------------------------
  await page.fill("#max-size", "9000");
  await page.click("#run");
  await page.waitForSelector('body[data-state="error"]', { timeout: 60000 });
  const error = await page.textContent("#error");
  check(/^400: /.test(error), `error shown: ${error}`);
  await page.fill("#max-size", "128");

  // --- The RLE decoder against a known mask, on a canned answer ----------------------
  // A ring and a bar on a 37x23 image: odd sizes, runs across columns, long runs.
  const W = 37, H = 23;
  const shape = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const r = Math.hypot(x - 12, y - 11);
      shape[y * W + x] = (r > 5 && r < 9) || (x >= 25 && x <= 33 && y >= 2 && y <= 20) ? 1 : 0;
    }
  }
  const canned = {
    masks: [{ label: "object 1", bbox: [3, 2, 34, 21], rle: { size: [H, W], counts: rleToString(maskRuns(shape, H, W)) },
              height: H, width: W }],
    text: "", image_width: W, image_height: H, input_tokens: 1, output_tokens: 1, timings_ms: {},
  };
  await page.route("**/v1/predictions", (route) =>
    route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(canned) }));
  await page.click("#run");
  await page.waitForSelector('body[data-state="done"]', { timeout: 60000 });
  const painted = await maskPixels(page);
  const want = [];
  for (let i = 0; i < W * H; i++) if (shape[i]) want.push(i);
  check(JSON.stringify(painted.set) === JSON.stringify(want), `RLE decoder paints exactly the mask (${painted.any} of ${want.length})`);
  await page.unroute("**/v1/predictions");

  // The browser logs the deliberate 400 above as a failed load; nothing else may appear.
  const unexpected = consoleErrors.filter((e) => !/status of 400/.test(e));
  check(unexpected.length === 0, `no console errors ${unexpected.join(" | ")}`);
  check(foreign.length === 0, `no requests beyond the server ${foreign.join(" ")}`);
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

console.log(failures ? `${failures} check(s) failed` : "all checks passed");
process.exit(failures ? 1 : 0);
