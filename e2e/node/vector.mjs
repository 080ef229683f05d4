// Checks envelope.mjs byte for byte against the fixed vectors of both versions.
//
// Version 1 (pqcrypto/testdata/envelope-v1.json): same deterministic random stream,
// same intermediate values (cek, encapsulation seeds, shared secrets, HKDF info, kek),
// same envelope; then opens the stored envelope for every recipient.
//
// Version 2 (pqcrypto/testdata/envelope-v2-vectors.json): every entry of every section:
// identity keys from seeds, KEM keys and their deterministic certificates, both signed
// envelopes (envelope, keyDigests, transcript, signature) and opening them as each
// recipient, a tampering check for every field the transcript covers, the safety
// numbers, the Argon2id keys and both sealed backups (and opening them).
//
//   node vector.mjs [path/to/envelope-v1.json [path/to/envelope-v2-vectors.json]]
//
// Prints one JSON line {"ok":true,...,"v2":{<section>: <entries reproduced>}} and exits
// 0, or names every mismatch and exits 1.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import {
  ALGORITHMS, aad, b64, unb64, hex, fingerprint, keyPairFromSeed, seal, open, openBytes, CannotOpenError, generateKeyPair,
  identityFromSeed, certificateMessage, certifyKEMKey, verifyKEMKeyCertificate, sealSigned, openSignedBytes, leaf,
  safetyNumber, formatSafetyNumber, backupKey, backupPlaintext, sealBackup, openBackup, CannotOpenBackupError,
  generateRecoveryKey, passphraseLongEnough, generateIdentity, sign, verify,
} from './envelope.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const testdata = join(here, '..', '..', 'pqcrypto', 'testdata');
const path = process.argv[2] ?? join(testdata, 'envelope-v1.json');
const pathV2 = process.argv[3] ?? join(testdata, 'envelope-v2-vectors.json');
const v = JSON.parse(readFileSync(path, 'utf8'));

const failures = [];
const check = (what, got, want) => {
  if (got !== want) failures.push(`${what}:\n  got  ${got}\n  want ${want}`);
};

// The vector's randomness: SHA-256(UTF-8(label) || uint32be(counter)) for counter = 0, 1, 2, ...
function ctrStream(label) {
  const lb = new TextEncoder().encode(label);
  let ctr = 0;
  let buf = new Uint8Array(0);
  return (n) => {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      if (buf.length === 0) {
        const block = new Uint8Array(lb.length + 4);
        block.set(lb);
        new DataView(block.buffer).setUint32(lb.length, ctr++, false);
        buf = sha256(block);
      }
      const c = Math.min(buf.length, n - off);
      out.set(buf.subarray(0, c), off);
      buf = buf.subarray(c);
      off += c;
    }
    return out;
  };
}

if (!/SHA-256\(UTF-8\(label\) \|\| uint32 big-endian counter\)/.test(v.randomness.construction)) {
  failures.push(`unexpected randomness construction: ${v.randomness.construction}`);
}

const header = { kind: v.header.kind, objectId: v.header.objectId, senderId: v.header.senderId, conversationId: v.header.conversationId };
check('aad', new TextDecoder().decode(aad(header)), v.aad);

// Keys from seeds: public key and fingerprint.
const keyPairs = [];
v.recipients.forEach((r, i) => {
  const kp = keyPairFromSeed(r.algorithm, unb64(r.seed));
  keyPairs.push(kp);
  check(`recipient ${i} (${r.algorithm}) public key`, b64(kp.publicKey), r.publicKey);
  check(`recipient ${i} (${r.algorithm}) fingerprint`, fingerprint(kp.publicKey), r.fingerprint);
  // The Go test draws each seed from the same stream construction with label "recipient i seed".
  check(`recipient ${i} seed from stream "recipient ${i} seed"`, b64(ctrStream(`recipient ${i} seed`)(ALGORITHMS[r.algorithm].seed)), r.seed);
});

// Seal with the vector's random stream and compare every intermediate value.
const traces = [];
const recipients = v.recipients.map((r, i) => ({ userId: r.userId, keyId: r.keyId, algorithm: r.algorithm, publicKey: keyPairs[i].publicKey }));
const env = await seal(header, unb64(v.plaintext), recipients, { random: ctrStream(v.randomness.label), trace: (t) => traces.push(t) });
check('cek', b64(traces[0].cek), v.cek);
v.recipients.forEach((r, i) => {
  const t = traces[i + 1];
  check(`recipient ${i} encapsulation seed`, b64(t.encapsulationSeed), r.encapsulationSeed);
  check(`recipient ${i} (${r.algorithm}) shared secret`, b64(t.sharedSecret), r.sharedSecret);
  check(`recipient ${i} hkdf info`, t.hkdfInfo, r.hkdfInfo);
  check(`recipient ${i} kek`, b64(t.kek), r.kek);
});
check('envelope ciphertext', env.ciphertext, v.envelope.ciphertext);
check('envelope nonce', env.nonce, v.envelope.nonce);
check('envelope key count', env.keys.length, v.envelope.keys.length);
env.keys.forEach((k, i) => {
  const w = v.envelope.keys[i] ?? {};
  for (const f of ['userId', 'keyId', 'kemCiphertext', 'wrappedKey']) check(`envelope key ${i} (${v.recipients[i].algorithm}) ${f}`, k[f], w[f]);
});

// Open the stored envelope (not our own output) as each recipient.
const plaintext = new TextDecoder().decode(unb64(v.plaintext));
for (const [i, r] of v.recipients.entries()) {
  const rk = v.envelope.keys.find((k) => k.userId === r.userId && k.keyId === r.keyId);
  try {
    check(`recipient ${i} (${r.algorithm}) opens the stored envelope`, await open(header, v.envelope.ciphertext, v.envelope.nonce, rk, keyPairs[i]), plaintext);
  } catch (e) {
    failures.push(`recipient ${i} (${r.algorithm}) cannot open the stored envelope: ${e.message}`);
  }
  // Binding: another conversation id, or the other recipient's seed, must not open.
  for (const [what, h, kp] of [
    ['another conversation id', { ...header, conversationId: header.objectId }, keyPairs[i]],
    ['another kind', { ...header, kind: 'doc' }, keyPairs[i]],
    ['the other recipient\'s key', header, keyPairs[(i + 1) % keyPairs.length]],
  ]) {
    try {
      await openBytes(h, v.envelope.ciphertext, v.envelope.nonce, rk, kp);
      failures.push(`recipient ${i}: opened under ${what}`);
    } catch (e) {
      if (!(e instanceof CannotOpenError)) failures.push(`recipient ${i}: ${what}: unexpected error ${e}`);
    }
  }
}

// A fresh random round trip through both algorithms.
const fresh = ['ML_KEM_768', 'X_WING'].map((a, i) => ({ kp: generateKeyPair(a), userId: `00000000-0000-4000-8000-00000000000${i}`, keyId: `00000000-0000-4000-8000-00000000001${i}` }));
const env2 = await seal(header, 'round trip ✓', fresh.map((f) => ({ userId: f.userId, keyId: f.keyId, algorithm: f.kp.algorithm, publicKey: f.kp.publicKey })));
for (const [i, f] of fresh.entries()) {
  check(`round trip ${f.kp.algorithm}`, await open(header, env2.ciphertext, env2.nonce, env2.keys[i], f.kp), 'round trip ✓');
}

const v2 = await checkV2(JSON.parse(readFileSync(pathV2, 'utf8')));

if (failures.length) {
  console.error(`vector.mjs: ${failures.length} mismatch(es) against ${path} and ${pathV2}:\n` + failures.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify({
  ok: true, vector: path, algorithms: v.recipients.map((r) => r.algorithm), xwing: 'noble ml_kem768_x25519 matches circl kem/xwing byte for byte',
  vectorV2: pathV2, v2,
}));

// ---- version 2 ---------------------------------------------------------------------------

// expectFailure runs f, which must throw an instance of cls; anything else is a failure.
async function expectFailure(what, cls, f) {
  try {
    await f();
    failures.push(`${what}: succeeded, want ${cls.name}`);
  } catch (e) {
    if (!(e instanceof cls)) failures.push(`${what}: threw ${e?.stack ?? e}, want ${cls.name}`);
  }
}

// Returns {section: number of entries reproduced}; the Go test compares it with the file.
async function checkV2(w) {
  const done = { identities: 0, kemKeys: 0, envelopes: 0, safetyNumbers: 0, argon2id: 0, backups: 0, tamperChecks: 0 };
  const tamper = async (what, cls, f) => {
    done.tamperChecks++;
    await expectFailure(what, cls, f);
  };

  // Identity keys from seeds.
  const ids = {};
  for (const [name, x] of Object.entries(w.identities)) {
    const id = identityFromSeed(unb64(x.seed));
    ids[name] = { ...id, uid: x.uid };
    check(`identity ${name} public key`, b64(id.publicKey), x.publicKey);
    check(`identity ${name} public key SHA-256`, hex(sha256(id.publicKey)), x.publicKeySha256);
    check(`identity ${name} fingerprint`, fingerprint(id.publicKey), x.fingerprint);
    done.identities++;
  }

  // KEM keys and their deterministic certificates.
  const kem = {};
  for (const [i, k] of w.kemKeys.entries()) {
    const what = `kemKeys[${i}] ${k.keyId}`;
    const kp = keyPairFromSeed(k.algorithm, unb64(k.seed));
    kem[k.keyId] = { ...k, kp };
    check(`${what} user id`, k.userId, w.identities[k.owner]?.uid);
    check(`${what} public key`, b64(kp.publicKey), k.publicKey);
    const m = certificateMessage(k.algorithm, k.seq, kp.publicKey);
    const prefix = new TextEncoder().encode(k.certificateMessagePrefix);
    check(`${what} certificate message prefix`, b64(m.subarray(0, prefix.length)), b64(prefix));
    check(`${what} certificate message length`, m.length, prefix.length + kp.publicKey.length);
    const owner = ids[k.owner];
    check(`${what} deterministic certificate`, b64(certifyKEMKey(owner, k.algorithm, k.seq, kp.publicKey, { deterministic: true })), k.certificateDeterministic);
    const cert = unb64(k.certificateDeterministic);
    check(`${what} stored certificate verifies`, verifyKEMKeyCertificate(owner.publicKey, k.algorithm, k.seq, kp.publicKey, cert), true);
    check(`${what} hedged certificate verifies`, verifyKEMKeyCertificate(owner.publicKey, k.algorithm, k.seq, kp.publicKey, certifyKEMKey(owner, k.algorithm, k.seq, kp.publicKey)), true);
    // Every part of the certified message is bound: seq, algorithm, key, signer.
    const other = w.kemKeys.find((o) => o.algorithm !== k.algorithm);
    const otherPk = unb64(w.kemKeys.find((o) => o.keyId !== k.keyId && o.algorithm === k.algorithm).publicKey);
    const stranger = Object.values(ids).find((x) => x.uid !== owner.uid);
    for (const [t, ok] of [
      ['another seq', verifyKEMKeyCertificate(owner.publicKey, k.algorithm, k.seq + 1, kp.publicKey, cert)],
      ['seq 0', verifyKEMKeyCertificate(owner.publicKey, k.algorithm, 0, kp.publicKey, cert)],
      ['another algorithm', verifyKEMKeyCertificate(owner.publicKey, other.algorithm, k.seq, unb64(other.publicKey), cert)],
      ['another public key', verifyKEMKeyCertificate(owner.publicKey, k.algorithm, k.seq, otherPk, cert)],
      ['another identity key', verifyKEMKeyCertificate(stranger.publicKey, k.algorithm, k.seq, kp.publicKey, cert)],
      ['a flipped signature byte', verifyKEMKeyCertificate(owner.publicKey, k.algorithm, k.seq, kp.publicKey, flip(cert, 100))],
    ]) {
      done.tamperChecks++;
      if (ok) failures.push(`${what}: certificate verifies with ${t}`);
    }
    done.kemKeys++;
  }

  // Signed envelopes.
  for (const e of w.envelopes) {
    const what = `envelope "${e.name}"`;
    const sender = ids[e.sender];
    const meta = { kind: e.meta.kind, objectId: e.meta.oid, senderId: e.meta.sid, conversationId: e.meta.cid, attachmentId: e.meta.attachmentId, name: e.meta.name, mimeType: e.meta.mimeType };
    check(`${what} sender id`, meta.senderId, sender.uid);
    const recipients = e.recipients.map((r) => {
      const k = kem[r.keyId];
      check(`${what} recipient ${r.keyId} owner`, k?.owner, r.owner);
      return { userId: k.userId, keyId: k.keyId, algorithm: k.algorithm, publicKey: k.kp.publicKey };
    });
    // The vector's randomness, in the order seal draws it: cek, nonce, then each
    // recipient's encapsulation seed in input order.
    const draws = [unb64(e.cek), unb64(e.nonce), ...recipients.map((r) => unb64(e.encapSeeds[r.userId]))];
    const random = (n) => {
      const d = draws.shift();
      if (!d || d.length !== n) throw new Error(`${what}: seal drew ${n} random bytes, the vector has ${d?.length}`);
      return d;
    };
    let t;
    const env = await sealSigned(meta, unb64(e.plaintext), recipients, sender, { random, deterministic: true, trace: (x) => { if (x.transcript) t = x.transcript; } });
    check(`${what} randomness all used`, draws.length, 0);
    check(`${what} ciphertext`, env.ciphertext, e.envelope.ciphertext);
    check(`${what} nonce`, env.nonce, e.envelope.nonce);
    check(`${what} key count`, env.keys.length, e.envelope.keys.length);
    env.keys.forEach((k, i) => {
      for (const f of ['userId', 'keyId', 'kemCiphertext', 'wrappedKey']) check(`${what} key ${i} ${f}`, k[f], e.envelope.keys[i]?.[f]);
    });
    check(`${what} keyDigests`, JSON.stringify(env.keyDigests), JSON.stringify(e.keyDigests));
    check(`${what} transcript`, hex(t), e.transcriptHex);
    check(`${what} transcript SHA-256`, hex(sha256(t)), e.transcriptSha256);
    check(`${what} deterministic signature`, env.signature, e.envelope.signature);

    // Open the stored envelope (not our own output) as each recipient, with alice pinned.
    const stored = { ciphertext: e.envelope.ciphertext, nonce: e.envelope.nonce, signature: e.envelope.signature, keyDigests: e.keyDigests };
    const plaintext = unb64(e.plaintext);
    for (const myKey of e.envelope.keys) {
      const kp = kem[myKey.keyId].kp;
      const who = `${what} opened by ${kem[myKey.keyId].owner}`;
      try {
        const pt = await openSignedBytes(meta, stored, myKey, kp, sender.publicKey);
        check(who, b64(pt), b64(plaintext));
      } catch (err) {
        failures.push(`${who}: ${err.message}`);
      }
      // Tampering with any field the transcript covers, or anything else the reader
      // relies on, is the one error.
      const other = Object.values(ids).find((x) => x.uid !== sender.uid);
      const ct = unb64(stored.ciphertext);
      const cases = [
        ['kind', { ...meta, kind: meta.kind === 'msg' ? 'doc' : 'msg' }, stored],
        ['object id', { ...meta, objectId: '99999999-0000-4000-8000-000000000009' }, stored],
        ['sender id', { ...meta, senderId: other.uid }, stored],
        ['conversation id', { ...meta, conversationId: '99999999-0000-4000-8000-000000000009' }, stored],
        ['attachment id', { ...meta, attachmentId: meta.attachmentId ? '' : 'dddddddd-0000-4000-8000-000000000009' }, stored],
        ['name', { ...meta, name: meta.name ? meta.name.normalize('NFD') : 'x' }, stored],
        ['mime type', { ...meta, mimeType: meta.mimeType ? meta.mimeType.toUpperCase() : 'text/plain' }, stored],
        ['nonce', meta, { ...stored, nonce: b64(flip(unb64(stored.nonce), 0)) }],
        ['ciphertext', meta, { ...stored, ciphertext: b64(flip(ct, ct.length - 1)) }],
        ['signature', meta, { ...stored, signature: b64(flip(unb64(stored.signature), 7)) }],
        ['signature left out', meta, { ...stored, signature: '' }],
        ['keyDigests reversed', meta, { ...stored, keyDigests: [...stored.keyDigests].reverse() }],
        ['keyDigests missing', meta, { ...stored, keyDigests: null }],
        ['keyDigests empty', meta, { ...stored, keyDigests: [] }],
        ['keyDigests with my leaf twice', meta, { ...stored, keyDigests: [...stored.keyDigests, b64(leaf(myKey))] }],
        ['keyDigests without my leaf', meta, { ...stored, keyDigests: stored.keyDigests.filter((d) => d !== b64(leaf(myKey))) }],
        ['keyDigests entry of 31 bytes', meta, { ...stored, keyDigests: stored.keyDigests.map((d) => (d === b64(leaf(myKey)) ? d : b64(unb64(d).subarray(1)))) }],
      ];
      for (const [field, m, envl] of cases) {
        await tamper(`${who}: tampered ${field}`, CannotOpenError, () => openSignedBytes(m, envl, myKey, kp, sender.publicKey));
      }
      await tamper(`${who}: another sender identity key pinned`, CannotOpenError, () => openSignedBytes(meta, stored, myKey, kp, other.publicKey));
      await tamper(`${who}: myKey's wrappedKey changed`, CannotOpenError, () => openSignedBytes(meta, stored, { ...myKey, wrappedKey: b64(flip(unb64(myKey.wrappedKey), 3)) }, kp, sender.publicKey));
      await tamper(`${who}: version 1 labels`, CannotOpenError, () => openBytes(meta, stored.ciphertext, stored.nonce, myKey, kp));
    }
    done.envelopes++;
  }

  // Safety numbers, both ways round.
  for (const s of w.safetyNumbers) {
    const a = { userId: ids[s.a].uid, identityKey: ids[s.a].publicKey };
    const b = { userId: ids[s.b].uid, identityKey: ids[s.b].publicKey };
    check(`safety number ${s.a}/${s.b}`, safetyNumber(a, b), s.number);
    check(`safety number ${s.b}/${s.a}`, safetyNumber(b, a), s.number);
    check(`safety number ${s.a}/${s.b} groups`, formatSafetyNumber(s.number).split(' ').length, 12);
    done.safetyNumbers++;
  }

  // Argon2id keys (NFC normalisation included).
  for (const [i, a] of w.argon2id.entries()) {
    check(`argon2id[${i}] key`, hex(await backupKey(a.secret, unb64(a.salt), a)), a.key);
    if (a.note) check(`argon2id[${i}] is written in another normal form than NFC`, a.secret !== a.secret.normalize('NFC'), true);
    done.argon2id++;
  }

  // Sealed backups: the recovery-key one and the passphrase one (also from its NFD form).
  for (const [name, bk] of [['backup', w.backup], ['backupPassphrase', w.backupPassphrase]]) {
    const owner = Object.values(ids).find((x) => x.uid === bk.uid);
    const ownKeys = w.kemKeys.filter((k) => k.userId === bk.uid).map((k) => ({ keyId: k.keyId, algorithm: k.algorithm, seed: unb64(k.seed) }));
    check(`${name} plaintext JSON`, backupPlaintext(owner.seed, ownKeys), bk.plaintextJson);
    const opts = { salt: unb64(bk.salt), nonce: unb64(bk.nonce), params: { t: bk.t, m: bk.m, p: bk.p } };
    const secrets = [bk.secret, ...(bk.secretNfd ? [bk.secretNfd] : [])];
    if (bk.secretNfd) check(`${name} secretNfd is the NFD form of secret`, bk.secretNfd !== bk.secret && bk.secretNfd.normalize('NFC') === bk.secret, true);
    for (const secret of secrets) {
      const form = secret === bk.secret ? 'secret' : 'secretNfd';
      check(`${name} sealed with ${form}`, await sealBackup(bk.uid, secret, bk.plaintextJson, opts), bk.sealed);
      try {
        const got = await openBackup(bk.uid, secret, bk.sealed);
        check(`${name} opened with ${form}`, got.json, bk.plaintextJson);
        check(`${name} identity seed`, b64(got.identitySeed), b64(owner.seed));
      } catch (err) {
        failures.push(`${name} cannot be opened with ${form}: ${err.message}`);
      }
    }
    const o = JSON.parse(bk.sealed);
    const with_ = (patch) => JSON.stringify({ ...o, ...patch });
    const ct = unb64(o.ciphertext);
    for (const [t, uid, secret, sealed] of [
      ['a wrong secret', bk.uid, bk.secret + 'x', bk.sealed],
      ['another user id', '99999999-9999-4999-8999-999999999999', bk.secret, bk.sealed],
      ['a flipped ciphertext byte', bk.uid, bk.secret, with_({ ciphertext: b64(flip(ct, 5)) })],
      ['v 1', bk.uid, bk.secret, with_({ v: 1 })],
      ['v as a string', bk.uid, bk.secret, with_({ v: '2' })],
      ['kdf argon2i', bk.uid, bk.secret, with_({ kdf: 'argon2i' })],
      ['t below 2', bk.uid, bk.secret, with_({ t: 1 })],
      ['t as a string', bk.uid, bk.secret, with_({ t: String(bk.t) })],
      ['t above 10', bk.uid, bk.secret, with_({ t: 11 })],
      ['m below 19456', bk.uid, bk.secret, with_({ m: 19455 })],
      ['m above 256 MiB', bk.uid, bk.secret, with_({ m: 262145 })],
      ['p above 4', bk.uid, bk.secret, with_({ p: 5 })],
      ['p not an integer', bk.uid, bk.secret, with_({ p: 1.5 })],
      ['a salt of 15 bytes', bk.uid, bk.secret, with_({ salt: b64(unb64(o.salt).subarray(1)) })],
      ['a nonce of 11 bytes', bk.uid, bk.secret, with_({ nonce: b64(unb64(o.nonce).subarray(1)) })],
      ['not JSON', bk.uid, bk.secret, bk.sealed.slice(1)],
      ['over 64 KiB', bk.uid, bk.secret, with_({ pad: 'x'.repeat(64 * 1024) })],
    ]) {
      await tamper(`${name}: opened with ${t}`, CannotOpenBackupError, () => openBackup(uid, secret, sealed));
    }
    done.backups++;
  }

  // Properties without a fixed vector: fresh random identities, signatures, backups.
  const fresh = generateIdentity();
  const msg = new TextEncoder().encode('fresh');
  check('fresh identity signs and verifies', verify(fresh.publicKey, msg, sign(fresh, msg)), true);
  check('a signature without the qchat/v2 context is refused', verify(fresh.publicKey, msg, signNoContext(fresh, msg)), false);
  const rk = generateRecoveryKey();
  check('recovery key: 43 base64url characters', /^[A-Za-z0-9_-]{43}$/.test(rk), true);
  check('passphrase of 11 code points in NFC (22 in NFD) is too short', passphraseLongEnough('é'.repeat(11)), false);
  check('passphrase of 12 code points is long enough', passphraseLongEnough('é'.repeat(12)), true);
  const fb = await sealBackup(ids.bob.uid, rk, w.backup.plaintextJson);
  check('fresh backup round trip', (await openBackup(ids.bob.uid, rk, fb)).json, w.backup.plaintextJson);
  return done;
}

// An ML-DSA-65 signature by the same key with the empty context.
function signNoContext(identity, msg) {
  return ml_dsa65.sign(msg, ml_dsa65.keygen(identity.seed).secretKey);
}

function flip(bytes, i) {
  const c = Uint8Array.from(bytes);
  c[i] ^= 1;
  return c;
}

