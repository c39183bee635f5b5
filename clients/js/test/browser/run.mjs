// The SDK in headless Chromium (Debian's `chromium`, driven by playwright-core;
// no browser is downloaded): run by gateway/tests/it/sdk/browser.rs with
//   GW_URL     wss://localhost:<port>/ws of a gateway serving TLS with the dev certificate
//   GW_TOKEN   a token for it
//   TLS_CERT, TLS_KEY   that certificate and key (PEM files)
//   CHROMIUM   the browser's executable (default /usr/bin/chromium)
// It serves a page and the built SDK (../../dist) over HTTPS with the same
// certificate, opens the page, and has it call the gateway over WSS.
// Prints "ok <scenario>" for each scenario that passed; exits non-zero on the first failure.
//
// Trust: Chromium is told to accept this one certificate's key, by its SPKI
// SHA-256 pin (--ignore-certificate-errors-spki-list), not to ignore
// certificate errors in general; scenario "untrusted" checks that the same
// browser without the pin refuses the page.
import assert from "node:assert/strict";
import { X509Certificate, createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "..", "..", "dist");
const url = process.env.GW_URL;
const token = process.env.GW_TOKEN;
const cert = readFileSync(process.env.TLS_CERT);
const key = readFileSync(process.env.TLS_KEY);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>bullmq-wire-client in a browser</title></head>
<body>
<script type="module">
  import { Client, ErrorCode } from "/sdk/index.js";
  // called by the test through page.evaluate; the SDK uses the browser's own WebSocket
  window.runSdk = async (url, token) => {
    const out = { secure: window.isSecureContext, native: typeof WebSocket === "function" };
    const client = new Client(url, { token });
    let opened = 0;
    client.on("open", () => opened++);
    try {
      out.echo = await client.call("demo.echo", { from: "chromium", n: 1 });
      const seen = [];
      let accepted;
      out.progressResult = await client.call("demo.sleep", { ms: 300, steps: 3 }, {
        onAccepted: (id) => (accepted = id),
        onProgress: (p) => seen.push(p),
      });
      out.progress = seen;
      out.accepted = accepted;
      try {
        await client.call("demo.fail", { message: "from the page" });
      } catch (e) {
        out.failed = { code: e.code, reason: e.data && e.data.failedReason, isFailed: e.code === ErrorCode.JobFailed };
      }
      out.opened = opened;
    } finally {
      client.close();
    }
    return out;
  };
  window.sdkReady = true;
</script>
</body></html>`;

const server = createServer({ cert, key }, async (req, res) => {
  const path = new URL(req.url, "https://localhost").pathname;
  try {
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(PAGE);
      return;
    }
    if (path.startsWith("/sdk/") && path.endsWith(".js")) {
      const file = normalize(join(dist, path.slice("/sdk/".length)));
      if (!file.startsWith(dist)) throw new Error("outside dist");
      const body = await readFile(file);
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      res.end(body);
      return;
    }
  } catch {
    // falls through to 404
  }
  res.writeHead(404);
  res.end();
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const pageUrl = `https://localhost:${server.address().port}/`;

// base64 SHA-256 of the certificate's SubjectPublicKeyInfo (RFC 7469 pin)
const spki = new X509Certificate(cert).publicKey.export({ type: "spki", format: "der" });
const pin = createHash("sha256").update(spki).digest("base64");

async function scenario(name, fn) {
  await fn();
  console.log(`ok ${name}`);
}

const started = Date.now();
let browser;
try {
  await scenario("untrusted", async () => {
    // the same browser without the pin: the dev certificate is not trusted
    const b = await chromium.launch({ executablePath, headless: true });
    try {
      const page = await b.newPage();
      let error;
      await page.goto(pageUrl).catch((e) => (error = e));
      assert.ok(error, "an untrusted certificate was accepted");
      assert.match(String(error), /ERR_CERT/);
    } finally {
      await b.close();
    }
  });

  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [`--ignore-certificate-errors-spki-list=${pin}`],
  });
  console.error(`chromium ${browser.version()}`);
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`page: ${m.text()}`));
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  let out;

  await scenario("https_page", async () => {
    const response = await page.goto(pageUrl);
    assert.equal(response.status(), 200);
    const security = await response.securityDetails();
    assert.ok(security && security.protocol.startsWith("TLS"), JSON.stringify(security));
    await page.waitForFunction(() => window.sdkReady === true, null, { timeout: 15_000 });
    out = await page.evaluate(([u, t]) => window.runSdk(u, t), [url, token]);
    console.error(`page result: ${JSON.stringify(out)}`);
    assert.equal(out.secure, true);
    assert.equal(out.native, true);
  });

  await scenario("echo", async () => {
    assert.deepEqual(out.echo, { from: "chromium", n: 1 });
  });

  await scenario("progress", async () => {
    assert.deepEqual(out.progressResult, { slept: 300 });
    assert.ok(out.accepted && out.accepted.startsWith("demo."), String(out.accepted));
    assert.ok(out.progress.length >= 1, "some progress");
    out.progress.forEach((p, i) => {
      assert.equal(p.of, 3);
      if (i > 0) assert.ok(p.step > out.progress[i - 1].step, JSON.stringify(out.progress));
    });
  });

  await scenario("failed", async () => {
    assert.deepEqual(out.failed, { code: -32010, reason: "from the page", isFailed: true });
  });

  await scenario("one_connection", async () => {
    assert.equal(out.opened, 1);
  });
} finally {
  await browser?.close();
  server.close();
  console.error(`browser run took ${Date.now() - started} ms`);
}
