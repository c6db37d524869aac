// Drives Converse.js (index.html) in headless Chromium with playwright-core:
// log in, see the contact in the roster (online), open a chat, send a
// message and see the contact's reply. Run by browser_test.go; it prints
// "OK ..." lines and finally PASS or "FAIL <reason>" on stdout, and logs
// the browser console and every WebSocket frame on stderr.
//
//   node converse.mjs --page http://127.0.0.1:8080/ --jid romeo@localhost --password secret \
//       --websocket-url ws://127.0.0.1:5280/xmpp-websocket \
//       --peer juliet@localhost --peer-name Juliet --message hello --reply 'hello back' \
//       --screenshot /tmp/failure.png
//
// Use --bosh-url http://127.0.0.1:5280/http-bind instead of --websocket-url
// for BOSH. The whole run is bounded by --timeout seconds (default 60).

import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opt } = parseArgs({
  options: {
    page: { type: 'string' },
    jid: { type: 'string' },
    password: { type: 'string' },
    'websocket-url': { type: 'string' },
    'bosh-url': { type: 'string' },
    peer: { type: 'string' },
    'peer-name': { type: 'string' },
    message: { type: 'string' },
    reply: { type: 'string' },
    screenshot: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '60' },
  },
});
for (const k of ['page', 'jid', 'password', 'peer', 'message', 'reply']) {
  if (!opt[k]) {
    console.log(`FAIL missing --${k}`);
    process.exit(2);
  }
}
if (!opt['websocket-url'] === !opt['bosh-url']) {
  console.log('FAIL give exactly one of --websocket-url and --bosh-url');
  process.exit(2);
}

const started = Date.now();
const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(3)}]`, ...a);
const ok = (line) => console.log(`OK ${line}`);
const STEP = 20000; // ms, for each wait below

let browser;
let page;
let finished = false;

async function screenshot () {
  if (!page || !opt.screenshot) return;
  try {
    await page.screenshot({ path: opt.screenshot, fullPage: true, timeout: 5000 });
    console.log(`SCREENSHOT ${opt.screenshot}`);
  } catch (e) {
    log('screenshot failed:', e.message);
  }
}

async function fail (reason) {
  if (finished) return;
  finished = true;
  await screenshot();
  console.log(`FAIL ${reason.replace(/\s+/g, ' ')}`);
  await browser?.close().catch(() => {});
  process.exit(1);
}

const overall = setTimeout(() => fail(`timeout after ${opt.timeout}s`), Number(opt.timeout) * 1000);

// step runs one stage and names it in the failure.
async function step (name, fn) {
  try {
    return await fn();
  } catch (e) {
    await fail(`${name}: ${e.message.split('\n')[0]}`);
    throw e;
  }
}

async function main () {
  browser = await step('launch chromium', () => chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    timeout: STEP,
    // --no-sandbox: Chromium refuses to run its sandbox as root (CI).
    // The resolver rule keeps the page off the network: only loopback
    // is reachable (Converse's start page links images on conversejs.org).
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'],
  }));
  ok(`browser version=${browser.version()}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('console', (m) => {
    // Strophe's own copies of the XML ("%c%s color: ...") repeat the
    // frames logged below.
    if (!m.text().startsWith('%c%s')) log(`console.${m.type()}:`, m.text());
  });
  page.on('pageerror', (e) => log('pageerror:', e.message));
  page.on('requestfailed', (r) => log('requestfailed:', r.url(), r.failure()?.errorText));
  page.on('websocket', (ws) => {
    log('websocket open:', ws.url());
    ws.on('framesent', (f) => log('xml: >>>', f.payload));
    ws.on('framereceived', (f) => log('xml: <<<', f.payload));
    ws.on('close', () => log('websocket closed'));
  });
  page.on('request', (r) => { if (r.method() === 'POST') log('xml: >>>', r.postData()); });
  page.on('response', async (r) => {
    if (r.status() >= 400) log(`http ${r.status()}:`, r.request().method(), r.url());
    if (r.request().method() === 'POST') log('xml: <<<', await r.text().catch((e) => `(${e.message})`));
  });

  const url = new URL(opt.page);
  url.searchParams.set('jid', opt.jid);
  url.searchParams.set('password', opt.password);
  if (opt['websocket-url']) url.searchParams.set('websocket_url', opt['websocket-url']);
  if (opt['bosh-url']) url.searchParams.set('bosh_service_url', opt['bosh-url']);
  await step('load page', () => page.goto(url.href, { waitUntil: 'load', timeout: STEP }));

  const login = await step('login', async () => {
    const h = await page.waitForFunction(() => {
      const s = window.metronomeTest;
      if (s?.errors.length) throw new Error(s.errors.join('; '));
      return s?.jid ? { jid: s.jid, service: s.service, version: s.version } : null;
    }, null, { timeout: STEP, polling: 100 });
    return h.jsonValue();
  });
  ok(`login jid=${login.jid} service=${login.service} converse=${login.version}`);

  const contact = page.locator(`a.open-chat[data-jid="${opt.peer}"]`);
  await step('roster contact', () => contact.waitFor({ timeout: STEP }));
  const name = (await contact.locator('.contact-name').innerText()).trim();
  ok(`roster contact=${opt.peer} name=${name}`);
  await step('contact online', () => contact.locator('.contact-name--online').waitFor({ timeout: STEP }));
  ok(`roster online=${opt.peer}`);

  await step('open chat', () => contact.click({ timeout: STEP }));
  const chat = page.locator(`converse-chat[jid="${opt.peer}"]`);
  const textarea = chat.locator('textarea.chat-textarea');
  await step('chat textarea', () => textarea.waitFor({ timeout: STEP }));
  ok(`chat open with=${opt.peer}`);

  await step('type message', async () => {
    await textarea.fill(opt.message, { timeout: STEP });
    await textarea.press('Enter', { timeout: STEP });
  });
  await step('own message shown', () =>
    chat.locator('.chat-msg__text', { hasText: opt.message }).first().waitFor({ timeout: STEP }));
  ok('sent');

  await step('reply shown', () =>
    chat.locator('.chat-msg__text', { hasText: opt.reply }).first().waitFor({ timeout: STEP }));
  ok(`received from=${opt.peer}`);

  await step('logout', async () => {
    await page.evaluate(() => window.metronomeTest.logout());
    await page.waitForFunction(() => !window.metronomeTest.jid, null, { timeout: STEP, polling: 100 });
  });
  ok('logout');

  finished = true;
  clearTimeout(overall);
  await browser.close();
  console.log('PASS');
}

main().catch((e) => fail(e.message));
