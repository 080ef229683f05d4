// The web app in a real Chromium (Debian's, driven by playwright-core), against
// a real server: node chat.mjs BASE_URL OUT_DIR [QCHAT_CLI]. Run by
// web/browser_test.go, which starts the server. Elements are found the way a
// person (or a screen reader) finds them: by role and label.
// The last line printed is {"ok":true,"checks":N} or the process fails.

import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';

const [base, out, cli] = process.argv.slice(2);
if (!base || !out) throw new Error('usage: node chat.mjs BASE_URL OUT_DIR [QCHAT_CLI]');
mkdirSync(out, { recursive: true });

const TIMEOUT = 15_000;
let checks = 0;
const problems = [];
// Set while the test itself cuts requests, or expects a 429: the browser logs
// each failed request as an error, which is not the app's.
let cutting = false;
let limiting = false;
function check(ok, what) {
  checks++;
  if (!ok) throw new Error(`check failed: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function person(name, viewport, colorScheme) {
  const context = await browser.newContext({ viewport, baseURL: base, colorScheme });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  // Any console error (a CSP violation is one), uncaught exception or dialog fails the run.
  page.on('console', (m) => {
    if (cutting && /net::ERR_/.test(m.text())) return;
    if (limiting && /status of 429/.test(m.text())) return;
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${name} console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name} page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`${name} dialog: ${d.message()}`);
    void d.dismiss();
  });
  const sockets = [];
  // The page's websockets pass through the test, which can cut them (see "lost connection").
  const routed = [];
  await page.routeWebSocket(/\/graphql$/, (ws) => {
    ws.connectToServer();
    routed.push(ws);
  });
  page.on('websocket', (ws) => {
    const s = { url: ws.url(), closed: false };
    ws.on('close', () => (s.closed = true));
    sockets.push(s);
  });
  // A reload drops the page's sockets without a close event: count only the current page's.
  // (The document's request comes before any socket of the new document.)
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) sockets.length = 0;
  });
  return { name, context, page, sockets, routed };
}

// An RGB PNG of w×h pixels (a gradient), made here so the test has no binary fixture.
function pngOf(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < h; y++) {
    rows.push(0);
    for (let x = 0; x < w; x++) rows.push((x * 32) & 255, (y * 32) & 255, 128);
  }
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
}

const shot = (p, file) => p.page.screenshot({ path: join(out, file) });
const log = (p) => p.page.getByRole('log', { name: 'Messages' });

const firstScreenMs = [];

async function register(p, username, password, algorithm) {
  const started = Date.now();
  const resp = await p.page.goto('/');
  const csp = resp.headers()['content-security-policy'] ?? '';
  check(/script-src 'self';/.test(csp) && /style-src 'self';/.test(csp) && /frame-ancestors 'none'/.test(csp) && !/unsafe/.test(csp), `CSP header: ${csp}`);
  await p.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  // Reported, not asserted: a timing on a shared machine proves nothing.
  firstScreenMs.push(Date.now() - started);
  await p.page.getByRole('link', { name: 'Create an account' }).click();
  await p.page.getByLabel('Username').fill(username);
  await p.page.getByLabel('Password').fill(password);
  if (algorithm) await p.page.getByLabel('Encryption key').selectOption(algorithm);
  await p.page.getByRole('button', { name: 'Create account' }).click();
  // (On a phone the home screen is the conversation list, without the welcome.)
  await p.page.getByRole('button', { name: 'Sign out' }).waitFor();
  check(p.page.viewportSize().width < 700 || (await p.page.getByText(`Signed in as ${username}`).isVisible()), `${username} signed in`);
  // Focus moves from the form that went away to the new screen's heading (on a phone the home screen is the list, without one).
  if (p.page.viewportSize().width >= 700) check((await focusedHeading(p)) === 'Welcome', `${username}: focus on the welcome after registering`);
}

// Which heading has the focus (the screen's, after navigating), or null.
const focusedHeading = (p) => p.page.evaluate(() => (/^H[1-6]$/.test(document.activeElement?.tagName ?? '') ? document.activeElement.textContent : null));

// Every control on the screen has an accessible name (its label, text or aria-label).
async function everyControlNamed(p, where) {
  for (const role of ['button', 'link', 'textbox', 'combobox', 'checkbox', 'radio', 'img', 'progressbar']) {
    const n = await p.page.getByRole(role, { name: /^\s*$/ }).count();
    check(n === 0, `${p.name}, ${where}: ${n} ${role} element(s) without a name`);
  }
}

async function signIn(p, username, password) {
  await p.page.goto('/');
  await p.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await p.page.getByLabel('Username').fill(username);
  await p.page.getByLabel('Password').fill(password);
  await p.page.getByRole('button', { name: 'Sign in' }).click();
  await p.page.getByRole('button', { name: 'Sign out' }).waitFor();
}

// The 60 digits of a safety number as shown: twelve groups of five.
async function safetyDigits(p, username) {
  await p.page.goto(`/safety/${username}`);
  const number = p.page.getByRole('group', { name: 'Safety number' });
  await number.waitFor();
  const groups = await number.locator('span').allInnerTexts();
  check(groups.length === 12 && groups.every((g) => /^\d{5}$/.test(g)), `${p.name}: twelve groups of five digits: ${groups.join(' ')}`);
  return groups.join(' ');
}

async function send(p, text) {
  const box = p.page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
  // Sent: the pending bubble is gone and the message is in the log, once.
  await p.page.getByText('Sending…').waitFor({ state: 'detached' });
  await log(p).getByText(text, { exact: true }).waitFor();
}

async function sees(p, text) {
  await log(p).getByText(text, { exact: true }).waitFor();
  checks++;
}

// The qchat CLI (when given): carol's account, and bob's own profile for his identity reset.
const run = promisify(execFile);
const cliDir = mkdtempSync(join(tmpdir(), 'qchat-cli-'));
process.on('exit', () => rmSync(cliDir, { recursive: true, force: true }));
const cliAs = (password, profile) => async (...args) =>
  (await run(cli, args, { env: { ...process.env, QCHAT_CONFIG_DIR: cliDir, QCHAT_SERVER: base, QCHAT_PASSWORD: password, QCHAT_PROFILE: profile }, timeout: TIMEOUT })).stdout;
const qchat = cliAs('password of carol', 'carol');

const alice = await person('alice', { width: 1200, height: 800 }, 'light');
// Bob: a phone-sized screen, with the system in dark mode.
const bob = await person('bob', { width: 360, height: 740 }, 'dark');
try {
  await register(alice, 'alice', 'correct horse battery', null);
  await register(bob, 'bob', 'another good password', 'X_WING');
  // Bob is offered a key backup too; not now.
  await bob.page.getByRole('button', { name: 'Not now' }).click();
  await bob.page.getByRole('link', { name: 'Create a key backup' }).waitFor({ state: 'detached' });
  checks++;
  await shot(bob, 'home-phone.png');

  // Alice makes a room and reads its invite code.
  await alice.page.getByRole('link', { name: 'New room' }).click();
  await alice.page.getByLabel('Room name').fill('General');
  await alice.page.getByRole('button', { name: 'Create room' }).click();
  await alice.page.getByRole('heading', { name: 'General' }).waitFor();
  check((await focusedHeading(alice)) === 'General', 'focus on the new room\'s heading');
  await everyControlNamed(alice, 'room');
  const code = (await alice.page.getByLabel('Invite code').innerText()).trim();
  check(code.length >= 6, `invite code ${code}`);

  // Bob, on a phone-sized screen, previews the room by its code and joins.
  await bob.page.getByRole('link', { name: 'Join a room' }).click();
  await bob.page.getByLabel('Invite code').fill(code);
  await bob.page.getByRole('button', { name: 'Find room' }).click();
  await bob.page.getByText('1 member').waitFor();
  await bob.page.getByRole('button', { name: 'Join General' }).click();
  await bob.page.getByRole('heading', { name: 'General' }).waitFor();

  // Alice sees who is in the room, with roles and presence.
  await alice.page.getByRole('button', { name: 'Members (2)' }).click();
  const members = alice.page.getByRole('list', { name: 'Members' });
  await members.getByText('alice, owner, online').waitFor();
  await members.getByText('bob, member, online').waitFor();
  await alice.page.getByRole('button', { name: 'Members (2)' }).click();
  checks++;

  // Both ways, live.
  await send(alice, 'Hello Bob, this is sealed with ML-KEM-768.');
  await sees(bob, 'Hello Bob, this is sealed with ML-KEM-768.');
  // Bob types: Alice sees it, then his message.
  await bob.page.getByLabel('Message', { exact: true }).fill('Hi Alice');
  await alice.page.getByText('bob is typing…').waitFor();
  checks++;
  await bob.page.getByLabel('Message', { exact: true }).press('Enter');
  await sees(alice, 'Hi Alice');
  // A screen reader hears it: the live region says who wrote what (the history itself is not read out).
  await alice.page.getByRole('status', { name: 'New message' }).filter({ hasText: 'New message from bob: Hi Alice' }).waitFor({ state: 'attached' });
  check((await log(alice).getAttribute('aria-live')) === 'off', 'the log is not read out as a whole');
  await alice.page.getByText('bob is typing…').waitFor({ state: 'detached' });

  // Read receipts, live: each browser marks what it shows read, and the
  // other sees who read its message.
  const item = (p, text) => log(p).getByRole('listitem').filter({ has: p.page.getByText(text, { exact: true }) });
  await item(alice, 'Hello Bob, this is sealed with ML-KEM-768.').getByText('Seen by bob').waitFor();
  checks++;
  await item(bob, 'Hi Alice').getByText('Seen by alice').waitFor();
  checks++;

  // HTML in a message is text: nothing is parsed, nothing runs.
  const html = '<img src=x onerror=alert(1)>';
  await send(alice, html);
  await sees(bob, html);
  check((await log(bob).getByRole('img').count()) === 0, 'no image element in the log');

  // A reload keeps the session (sessionStorage), the screen (the server's
  // fallback to the app's page) and the key (IndexedDB) that opens history.
  await bob.page.reload();
  await sees(bob, 'Hi Alice');
  await sees(bob, 'Hello Bob, this is sealed with ML-KEM-768.');

  // Alice deletes a message of hers: a tombstone for both.
  await send(alice, 'A slip of the keyboard');
  await sees(bob, 'A slip of the keyboard');
  await alice.page.getByRole('button', { name: 'Delete “A slip of the keyboard”' }).click();
  await alice.page.getByRole('button', { name: 'Delete for everyone' }).click();
  await log(bob).getByText('A slip of the keyboard', { exact: true }).waitFor({ state: 'detached' });
  await log(bob).getByText('Message deleted').waitFor();
  check((await log(alice).getByText('A slip of the keyboard', { exact: true }).count()) === 0, 'tombstone for alice');

  // A lost connection is shown, the app reconnects by itself and live
  // messages flow again.
  for (const ws of alice.routed.splice(0)) await ws.close({ code: 1012, reason: 'test: connection lost' });
  await alice.page.getByText('Connection lost. Reconnecting…').waitFor();
  await alice.page.getByText('Connection lost. Reconnecting…').waitFor({ state: 'detached' });
  await send(bob, 'Still there?');
  await sees(alice, 'Still there?');

  // A send that cannot reach the server says so in words; Retry sends it.
  await alice.page.route('**/graphql', (route) =>
    cutting && (route.request().postData() ?? '').includes('mutation SendMessage') ? route.abort('connectionrefused') : route.continue(),
  );
  cutting = true;
  const box = alice.page.getByLabel('Message', { exact: true });
  await box.fill('Sent on the second try');
  await box.press('Enter');
  await alice.page.getByText('Not sent: Cannot reach the server').waitFor();
  await shot(alice, 'send-failed.png');
  cutting = false;
  await alice.page.getByRole('button', { name: 'Retry sending' }).click();
  await sees(bob, 'Sent on the second try');
  await alice.page.getByRole('button', { name: 'Retry sending' }).waitFor({ state: 'detached' });
  await alice.page.unroute('**/graphql');
  checks++;

  // Alice backs her keys up with a recovery key (the default), then rotates
  // her key: the backup is resealed with the new key by itself.
  // (The app offers it while she has none.)
  await alice.page.getByRole('link', { name: 'Create a key backup' }).click();
  await alice.page.getByRole('heading', { name: 'Settings' }).waitFor();
  await alice.page.getByText('You have no key backup yet').waitFor();
  await alice.page.getByRole('button', { name: 'Create backup' }).click();
  const recoveryKey = (await alice.page.getByLabel('Recovery key', { exact: true }).innerText()).trim();
  check(/^[A-Za-z0-9_-]{43}$/.test(recoveryKey), `recovery key ${recoveryKey}`);
  await alice.page.getByText('You have a key backup').waitFor();
  await everyControlNamed(alice, 'settings');
  await shot(alice, 'settings.png');
  await alice.page.getByRole('link', { name: /^General/ }).click();
  await send(alice, 'Sealed to my first key.');
  await sees(bob, 'Sealed to my first key.');
  await alice.page.getByRole('link', { name: 'Settings' }).click();
  await alice.page.getByRole('button', { name: 'Rotate my encryption key' }).click();
  await alice.page.getByText('New encryption key made (number 2). Your key backup was updated with it.').waitFor();
  checks++;
  await alice.page.getByRole('link', { name: /^General/ }).click();
  await send(bob, 'Sealed to your second key.');
  await sees(alice, 'Sealed to your second key.');

  // A third context: alice on a new device. Signed in, it has no keys, so it
  // offers the backup; with the recovery key it reads the whole history,
  // from before and after the rotation.
  const device = await person('alice-new-device', { width: 1000, height: 760 }, 'dark');
  await signIn(device, 'alice', 'correct horse battery');
  await device.page.getByRole('heading', { name: 'Restore your keys' }).waitFor();
  await device.page.getByLabel('Recovery key or passphrase').fill('not the recovery key at all');
  await device.page.getByRole('button', { name: 'Restore keys' }).click();
  await device.page.getByRole('alert').getByText('Cannot open the key backup').waitFor();
  await everyControlNamed(device, 'restore keys');
  checks++;
  await shot(device, 'restore-keys.png');
  await device.page.getByLabel('Recovery key or passphrase').fill(recoveryKey);
  await device.page.getByRole('button', { name: 'Restore keys' }).click();
  await device.page.getByRole('heading', { name: 'Welcome' }).waitFor();
  check((await focusedHeading(device)) === 'Welcome', 'focus on the welcome once the keys are restored');
  await device.page.getByRole('link', { name: /^General/ }).click();
  for (const text of ['Hello Bob, this is sealed with ML-KEM-768.', 'Hi Alice', 'Sealed to my first key.', 'Sealed to your second key.', 'Sent on the second try']) await sees(device, text);
  check((await log(device).getByText('Cannot open this message').count()) === 0, 'the new device opens every message');
  check((await log(device).getByText('sender not verified').count()) === 0, 'every message is signed and verified against the pinned key');
  await send(device, 'Written on my new device.');
  await sees(bob, 'Written on my new device.');
  await device.context.close();

  // Alice replaces her backup with a passphrase of her own (too short first),
  // then deletes it.
  await alice.page.getByRole('link', { name: 'Settings' }).click();
  await alice.page.getByText('You have a key backup').waitFor();
  await alice.page.getByLabel('A passphrase of my own').check();
  await alice.page.getByLabel('Passphrase', { exact: true }).fill('too short');
  await alice.page.getByLabel('Repeat passphrase').fill('too short');
  await alice.page.getByRole('button', { name: 'Replace backup' }).click();
  await alice.page.getByText('The passphrase must be at least 12 characters long.').waitFor();
  await alice.page.getByLabel('Passphrase', { exact: true }).fill('ünïcödé pässphrase');
  await alice.page.getByLabel('Repeat passphrase').fill('ünïcödé pässphrase');
  await alice.page.getByRole('button', { name: 'Replace backup' }).click();
  await alice.page.getByText('Key backup replaced.').waitFor();
  checks++;
  await alice.page.getByRole('button', { name: 'Delete backup' }).click();
  await alice.page.getByRole('button', { name: 'Yes, delete the backup' }).click();
  await alice.page.getByText('You have no key backup yet').waitFor();
  checks++;
  await alice.page.getByRole('link', { name: /^General/ }).click();

  // The chat view (docs/screenshot.png is alice's), before the CLI's filler.
  await shot(alice, 'chat.png');
  await shot(bob, 'chat-phone.png');

  if (cli) {
    // A qchat CLI user joins by the code and talks with the browsers; each
    // side verifies the other's signatures (the CLI's Go, the browsers' JS).
    await qchat('keygen');
    await qchat('register', 'carol');
    await qchat('room', 'join', code);
    await qchat('send', 'General', 'Hello from the terminal');
    await sees(alice, 'Hello from the terminal');
    await sees(bob, 'Hello from the terminal');
    check((await item(alice, 'Hello from the terminal').getByText('sender not verified').count()) === 0, 'the CLI\'s signature verifies in the browser');
    // More than a page (40) of history, for paging back below.
    for (let i = 1; i <= 40; i++) await qchat('send', 'General', `Filler ${i}`);
    await sees(alice, 'Filler 40');
    // More than a page (20) of documents, for the room's document list below.
    for (let i = 1; i <= 20; i++) {
      const file = join(cliDir, `carol-${i}.txt`);
      writeFileSync(file, `Document ${i} from the terminal\n`);
      await qchat('upload', 'General', file, '--no-message');
    }
    // The browsers' envelopes open in the CLI (bob's key is X-Wing).
    await send(bob, 'Welcome, carol!');
    const history = await qchat('history', 'General');
    check(history.includes('Welcome, carol!') && history.includes('Hello from the terminal'), `carol's history:\n${history}`);

    // A fresh view shows the newest page, and scrolling to the top (Home,
    // from the keyboard) loads the older one.
    await alice.page.reload();
    await sees(alice, 'Filler 40');
    check((await log(alice).getByText('Hi Alice', { exact: true }).count()) === 0, 'only the newest page at first');
    await log(alice).focus();
    await log(alice).press('Home');
    await sees(alice, 'Hi Alice');
  }


  // A direct conversation, started by username.
  await alice.page.getByRole('link', { name: 'Message someone' }).click();
  await alice.page.getByLabel('Their username').fill('bob');
  await alice.page.getByRole('button', { name: 'Start conversation' }).click();
  await alice.page.getByRole('heading', { name: '@bob' }).waitFor();
  await send(alice, 'Just between us.');
  // Bob's list shows it unread; he opens it.
  await bob.page.getByRole('link', { name: 'QChat' }).click();
  const dm = bob.page.getByRole('link', { name: /@alice/ });
  await dm.getByText('1 unread').waitFor();
  checks++;
  await dm.click();
  await sees(bob, 'Just between us.');
  // Typing shows in a direct conversation too.
  await bob.page.getByLabel('Message', { exact: true }).fill('Agreed.');
  await alice.page.getByText('bob is typing…').waitFor();
  await bob.page.getByLabel('Message', { exact: true }).press('Enter');
  await sees(alice, 'Agreed.');
  checks++;
  await shot(alice, 'direct.png');

  // Safety numbers: both see the same sixty digits; alice marks bob verified.
  const aliceSees = await safetyDigits(alice, 'bob');
  const bobSees = await safetyDigits(bob, 'alice');
  check(aliceSees === bobSees, `the same safety number: ${aliceSees} / ${bobSees}`);
  await alice.page.getByRole('button', { name: 'Mark bob as verified' }).click();
  await alice.page.getByText('Verified.').waitFor();
  checks++;
  await shot(bob, 'safety-number-phone.png');
  await alice.page.getByRole('link', { name: 'Message bob' }).click();
  await bob.page.getByRole('link', { name: 'Settings' }).click();
  await bob.page.getByRole('heading', { name: 'Key backup' }).waitFor();
  await shot(bob, 'settings-phone.png');
  await bob.page.goBack();
  await bob.page.getByRole('link', { name: 'Message alice' }).click();
  await sees(bob, 'Agreed.');

  // Attachments: alice sends an image and a PDF; bob sees the image inline
  // and downloads both, decrypted, byte for byte what she attached.
  const png = pngOf(8, 8);
  const pdf = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n' + 'x'.repeat(3000), 'latin1');
  for (const [name, mimeType, buffer] of [['dot.png', 'image/png', png], ['notes.pdf', 'application/pdf', pdf]]) {
    await alice.page.getByLabel('Attach a file').setInputFiles({ name, mimeType, buffer });
    await sees(alice, name);
    await sees(bob, name);
  }
  const img = log(bob).getByRole('img', { name: 'dot.png' });
  await img.waitFor();
  check(await img.evaluate((e) => e.complete && e.naturalWidth === 8 && e.src.startsWith('blob:')), 'the image previews from a blob: URL');
  for (const [name, buffer] of [['dot.png', png], ['notes.pdf', pdf]]) {
    const [download] = await Promise.all([bob.page.waitForEvent('download'), log(bob).getByRole('button', { name: `Download ${name}` }).click()]);
    check(download.suggestedFilename() === name && readFileSync(await download.path()).equals(buffer), `${name} downloads with identical bytes`);
  }
  // Each attachment shows its own signature's state once opened.
  for (const name of ['dot.png', 'notes.pdf']) await item(bob, name).getByText('Signed by alice, verified').waitFor();
  checks++;
  await shot(bob, 'attachments-phone.png');

  // A room's documents: alice shares a text file in General; bob lists it
  // (name, size, who), downloads it (identical bytes, alice's signature
  // verified against the key his browser pinned) and cannot delete it; alice
  // deletes it after confirming: gone from the lists, and the message that
  // shared it says so.
  const minutes = Buffer.from(`Minutes of the meeting\n${'ü'.repeat(500)}`, 'utf8');
  await alice.page.getByRole('link', { name: /^General/ }).click();
  await alice.page.getByRole('heading', { name: 'General' }).waitFor();
  await alice.page.getByLabel('Attach a file').setInputFiles({ name: 'minutes.txt', mimeType: 'text/plain', buffer: minutes });
  await sees(alice, 'minutes.txt');
  await bob.page.getByRole('link', { name: 'QChat' }).click();
  await bob.page.getByRole('link', { name: /^General/ }).click();
  await sees(bob, 'minutes.txt');
  await bob.page.getByRole('button', { name: 'Documents', exact: true }).click();
  const bobDocs = bob.page.getByRole('list', { name: 'Documents' });
  const bobRow = bobDocs.getByRole('listitem').filter({ hasText: 'minutes.txt' });
  await bobRow.getByText(/^1\.0 KiB, shared by alice, /).waitFor();
  check((await bobRow.getByRole('button', { name: 'Delete minutes.txt' }).count()) === 0, 'only the uploader may delete a document');
  {
    const [download] = await Promise.all([bob.page.waitForEvent('download'), bobRow.getByRole('button', { name: 'Download minutes.txt' }).click()]);
    check(download.suggestedFilename() === 'minutes.txt' && readFileSync(await download.path()).equals(minutes), 'a listed document downloads with identical bytes');
  }
  await bobRow.getByText('Signed by alice, verified').waitFor();
  if (cli) {
    // A page is twenty, newest first: carol's first document comes with the next page, and her (Go) signature verifies here.
    check((await bobDocs.getByRole('listitem').count()) === 20, 'the first page of documents');
    await bob.page.getByRole('button', { name: 'Load more documents' }).click();
    const carolRow = bobDocs.getByRole('listitem').filter({ hasText: 'carol-1.txt' });
    await carolRow.getByText(/shared by carol/).waitFor();
    const listed = await bobDocs.getByRole('listitem').locator('.name').allInnerTexts();
    check(listed.length === 21 && new Set(listed).size === 21 && (await bob.page.getByRole('button', { name: 'Load more documents' }).count()) === 0, `every document, once: ${listed.join(', ')}`);
    const [download] = await Promise.all([bob.page.waitForEvent('download'), carolRow.getByRole('button', { name: 'Download carol-1.txt' }).click()]);
    check(readFileSync(await download.path()).equals(readFileSync(join(cliDir, 'carol-1.txt'))), 'the CLI\'s document downloads with identical bytes');
    await carolRow.getByText('Signed by carol, verified').waitFor();
  }
  await everyControlNamed(bob, 'documents');
  checks++;
  await shot(bob, 'documents-phone.png');
  // A file shared meanwhile joins the open list, live.
  await alice.page.getByLabel('Attach a file').setInputFiles({ name: 'agenda.txt', mimeType: 'text/plain', buffer: Buffer.from('1. Minutes\n2. Plans\n') });
  await bobDocs.getByText('agenda.txt', { exact: true }).waitFor();
  checks++;
  await alice.page.getByRole('button', { name: 'Documents', exact: true }).click();
  const aliceRow = alice.page.getByRole('list', { name: 'Documents' }).getByRole('listitem').filter({ hasText: 'minutes.txt' });
  await aliceRow.getByText(/shared by you/).waitFor();
  await aliceRow.getByRole('button', { name: 'Delete minutes.txt' }).click();
  const keep = aliceRow.getByRole('button', { name: 'Keep minutes.txt' });
  check(await keep.evaluate((e) => e === document.activeElement), 'the confirmation focuses the safe choice');
  await shot(alice, 'documents.png');
  await aliceRow.getByRole('button', { name: 'Yes, delete minutes.txt' }).click();
  await alice.page.getByRole('status').getByText('minutes.txt deleted.').waitFor();
  await aliceRow.waitFor({ state: 'detached' });
  await log(alice).getByText('The attached file was deleted by the person who shared it.').waitFor();
  checks++;
  // Bob's page learns it when it asks for the file.
  await log(bob).getByRole('button', { name: 'Download minutes.txt' }).click();
  await log(bob).getByText('The attached file was deleted by the person who shared it.').waitFor();
  await bobRow.waitFor({ state: 'detached' });
  await bob.page.reload();
  await bob.page.getByRole('button', { name: 'Documents', exact: true }).click();
  await bobDocs.getByText('agenda.txt', { exact: true }).waitFor();
  check((await bobDocs.getByText('minutes.txt', { exact: true }).count()) === 0, 'a deleted document is not listed');
  await log(bob).getByText('The attached file was deleted by the person who shared it.').waitFor();
  checks++;
  await bob.page.getByRole('button', { name: 'Documents', exact: true }).click();
  await alice.page.getByRole('button', { name: 'Documents', exact: true }).click();

  // Bob leaves the room (after confirming); it leaves his list.
  await bob.page.getByRole('link', { name: 'QChat' }).click();
  await bob.page.getByRole('link', { name: /^General/ }).click();
  await bob.page.getByRole('button', { name: 'Leave room' }).click();
  await bob.page.getByRole('button', { name: 'Yes, leave General' }).click();
  await bob.page.getByRole('link', { name: /@alice/ }).waitFor();
  await bob.page.getByRole('link', { name: /^General/ }).waitFor({ state: 'detached' });
  checks++;

  // Alice, the owner, manages the room: a new invite code, bob added back
  // by username and removed again, a new name.
  await alice.page.getByRole('link', { name: /^General/ }).click();
  await alice.page.getByRole('heading', { name: 'General' }).waitFor();
  await alice.page.getByText('you are owner').waitFor();
  const manage = alice.page.getByRole('button', { name: 'Manage room' });
  await manage.click();
  await alice.page.getByRole('button', { name: 'Rotate invite code' }).click();
  await alice.page.getByText('New invite code made').waitFor();
  const rotated = (await alice.page.getByLabel('Invite code').innerText()).trim();
  check(rotated.length >= 6 && rotated !== code, `rotated invite code ${rotated} (was ${code})`);
  await alice.page.getByLabel('Add member by username').fill('bob');
  await alice.page.getByRole('button', { name: 'Add member' }).click();
  await alice.page.getByText('bob added.').waitFor();
  await manage.click();
  await alice.page.getByRole('button', { name: /^Members/ }).click();
  const list = alice.page.getByRole('list', { name: 'Members' });
  await list.getByText(/^bob, member/).waitFor();
  checks++;
  // The owner makes bob an admin, and a member again.
  await list.getByRole('button', { name: 'Make bob an admin' }).click();
  await list.getByText(/^bob, admin/).waitFor();
  await list.getByRole('button', { name: 'Make bob a member' }).click();
  await list.getByText(/^bob, member/).waitFor();
  checks++;
  await list.getByRole('button', { name: 'Remove bob' }).click();
  await list.getByText(/^bob, /).waitFor({ state: 'detached' });
  checks++;
  await alice.page.getByRole('button', { name: /^Members/ }).click();
  await manage.click();
  await alice.page.getByLabel('New room name').fill('Team');
  await alice.page.getByRole('button', { name: 'Rename room' }).click();
  await alice.page.getByRole('heading', { name: 'Team' }).waitFor();
  await alice.page.getByRole('link', { name: /^Team/ }).waitFor();
  checks++;
  await shot(alice, 'manage-room.png');
  // Deleting asks first; then the room is gone from the list.
  await alice.page.getByRole('button', { name: 'Delete room' }).click();
  await alice.page.getByRole('button', { name: 'Yes, delete Team' }).click();
  await alice.page.getByRole('link', { name: /^Team/ }).waitFor({ state: 'detached' });
  checks++;

  // Bob loses every device and has no backup: he resets his identity with
  // the CLI (reset-identity, with his password), or, when the test runs
  // without a CLI, starts over in a new browser (the same setIdentityKey). Alice's browser
  // warns at once and blocks sending to him until she accepts the new key.
  await alice.page.getByRole('link', { name: /@bob/ }).click();
  await sees(alice, 'Agreed.');
  const bobCli = cliAs('another good password', 'bob');
  let bob2 = null;
  if (cli) {
    await bobCli('login', 'bob');
    await bobCli('reset-identity');
  } else {
    bob2 = await person('bob-new-device', { width: 360, height: 740 }, 'light');
    await signIn(bob2, 'bob', 'another good password');
    await bob2.page.getByRole('heading', { name: 'Restore your keys' }).waitFor();
    await bob2.page.getByText('You have no key backup').waitFor();
    await bob2.page.getByLabel('Your account password').fill('another good password');
    await bob2.page.getByRole('button', { name: 'Make new keys' }).click();
    await bob2.page.getByRole('link', { name: 'Settings' }).waitFor();
  }
  const warning = alice.page.getByRole('alertdialog', { name: 'bob: identity key changed' });
  await warning.waitFor();
  check(await warning.evaluate((e) => e.contains(document.activeElement)), 'focus moves to the warning');
  check(await alice.page.getByRole('button', { name: 'Send' }).isDisabled(), 'sending to bob is blocked');
  await alice.page.getByText('Sending is blocked: bob has a new identity key').waitFor();
  await shot(alice, 'identity-changed.png');
  // In a room too: once bob is added to a new room of alice's, sending there is blocked.
  await alice.page.getByRole('link', { name: 'New room' }).click();
  await alice.page.getByLabel('Room name').fill('Checks');
  await alice.page.getByRole('button', { name: 'Create room' }).click();
  await alice.page.getByRole('heading', { name: 'Checks' }).waitFor();
  check(!(await alice.page.getByRole('button', { name: 'Send' }).isDisabled()), 'alone in a room: sending is open');
  await alice.page.getByRole('button', { name: 'Manage room' }).click();
  await alice.page.getByLabel('Add member by username').fill('bob');
  await alice.page.getByRole('button', { name: 'Add member' }).click();
  await alice.page.getByText('bob added.').waitFor();
  await alice.page.getByText('Sending is blocked: bob has a new identity key').waitFor();
  check(await alice.page.getByRole('button', { name: 'Send' }).isDisabled(), 'sending to a room with bob is blocked');
  await alice.page.getByRole('button', { name: 'Manage room' }).click();
  // Not forgotten by a reload: the pins are checked at start-up.
  await alice.page.reload();
  await warning.waitFor();
  check(await alice.page.getByRole('button', { name: 'Send' }).isDisabled(), 'still blocked after a reload');
  await warning.getByRole('link', { name: 'Compare safety numbers with bob' }).click();
  const changedSees = await alice.page.getByRole('group', { name: 'Safety number' }).locator('span').allInnerTexts();
  check(changedSees.join(' ') !== aliceSees, 'a new identity key, a new safety number');
  await alice.page.getByRole('button', { name: "Accept bob's new key" }).first().click();
  await warning.waitFor({ state: 'detached' });
  await alice.page.getByText('Not verified yet.').waitFor();
  check((await focusedHeading(alice)) === 'Safety number with bob', 'focus returns to the screen once the warning is gone');
  await alice.page.getByRole('link', { name: 'Message bob' }).click();
  check(!(await alice.page.getByRole('button', { name: 'Send' }).isDisabled()), 'sending to bob again');
  await send(alice, 'Welcome back, bob.');
  if (bob2) {
    await bob2.page.getByRole('link', { name: /@alice/ }).click();
    await sees(bob2, 'Welcome back, bob.');
    await bob2.context.close();
  } else {
    const history = await bobCli('history', '@alice');
    check(history.includes('Welcome back, bob.'), `bob's new keys in the CLI open it:\n${history}`);
  }

  // Alice on yet another browser, after deleting her backup: nothing to
  // restore, so she starts over with new keys (her password first mistyped).
  const fresh = await person('alice-start-over', { width: 1000, height: 760 }, 'light');
  await signIn(fresh, 'alice', 'correct horse battery');
  await fresh.page.getByText('You have no key backup, so your keys cannot be restored').waitFor();
  await fresh.page.getByLabel('Your account password').fill('not my password');
  await fresh.page.getByRole('button', { name: 'Make new keys' }).click();
  await fresh.page.getByText(/^Please check what you entered: password/).waitFor();
  await fresh.page.getByLabel('Your account password').fill('correct horse battery');
  await fresh.page.getByRole('button', { name: 'Make new keys' }).click();
  await fresh.page.getByRole('link', { name: 'Create a key backup' }).waitFor();
  checks++;
  await fresh.context.close();

  // Signing out closes the websocket.
  check(alice.sockets.length > 0 && alice.sockets.some((s) => !s.closed), 'alice has an open websocket');
  await alice.page.getByRole('button', { name: 'Sign out' }).click();
  await alice.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  check((await focusedHeading(alice)) === 'Sign in', 'focus on the sign-in form after signing out');
  await alice.page.waitForFunction(() => true);
  const deadline = Date.now() + TIMEOUT;
  while (alice.sockets.some((s) => !s.closed) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  check(alice.sockets.every((s) => s.closed), 'alice websocket closed on sign-out');

  // Guessing alice's password: wrong, then limited, said with the wait.
  limiting = true;
  for (let i = 1; ; i++) {
    await alice.page.getByLabel('Username').fill('alice');
    await alice.page.getByLabel('Password').fill(`guess ${i}`);
    await alice.page.getByRole('button', { name: 'Sign in' }).click();
    const alert = alice.page.getByRole('alert');
    await alert.waitFor();
    const said = await alert.innerText();
    if (/Too many requests/.test(said)) {
      check(/Try again in \d+ (seconds?|minutes)\./.test(said), `rate limit message: ${said}`);
      break;
    }
    check(said === 'Wrong username or password.' && i <= 10, `wrong password ${i}: ${said}`);
    await alice.page.getByRole('button', { name: 'Sign in' }).waitFor();
    await alice.page.getByLabel('Password').fill('');
  }
  await shot(alice, 'rate-limited.png');
  limiting = false;

  check(problems.length === 0, `no console errors, CSP violations or dialogs:\n${problems.join('\n')}`);
} catch (err) {
  await shot(alice, 'failure-alice.png').catch(() => {});
  await shot(bob, 'failure-bob.png').catch(() => {});
  console.error(problems.join('\n'));
  throw err;
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ok: true, checks, firstScreenMs }));
