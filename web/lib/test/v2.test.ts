// Version 2 against pqcrypto/testdata/envelope-v2-vectors.json (PROTOCOL-V2 §9):
// identity keys, certificates, signed envelopes, safety numbers, Argon2id and
// backups, byte for byte; then tampering with each signed value.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Algorithm, CannotOpenBackupError, CannotOpenError, type MetaV2, type Recipient, type RecipientKey, b64, certificateMessage,
  certifyKemKey, deriveBackupKey, fingerprint, formatSafetyNumber, fromWireKey, generateIdentity, generateKeyPair, generateRecoveryKey, hex,
  identityFromSeed, isAlgorithm, keyPairFromSeed, leaf, openBackup, openV1, openV2, safetyNumber, sealBackup, sealV2, signEnvelope, transcript,
  unb64, verifyEnvelope, verifyKemCertificate, type BackupContents, newBackupKey, openBackupWithKey, sealBackupWithKey,
} from '../src/index.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { flip, queue, testdata } from './helpers.js';

interface Identity { uid: string; seed: string; publicKey: string; publicKeySha256: string; fingerprint: string }
interface KemKey { owner: string; userId: string; keyId: string; algorithm: string; seed: string; publicKey: string; seq: number; certificateMessagePrefix: string; certificateDeterministic: string }
interface WireKey { userId: string; keyId: string; kemCiphertext: string; wrappedKey: string }
interface EnvelopeVector {
  name: string; sender: string;
  meta: { kind: 'msg' | 'doc'; oid: string; sid: string; cid: string; attachmentId: string; name: string; mimeType: string };
  plaintext: string; recipients: { owner: string; keyId: string }[]; cek: string; nonce: string; encapSeeds: Record<string, string>;
  envelope: { ciphertext: string; nonce: string; keys: WireKey[]; signature: string };
  keyDigests: string[]; transcriptHex: string; transcriptSha256: string;
}
interface Backup { uid: string; secret: string; secretNfd?: string; plaintextJson: string; salt: string; nonce: string; t: number; m: number; p: number; sealed: string }
interface Vectors {
  identities: Record<string, Identity>;
  kemKeys: KemKey[];
  envelopes: EnvelopeVector[];
  safetyNumbers: { a: string; b: string; number: string }[];
  argon2id: { secret: string; salt: string; t: number; m: number; p: number; key: string }[];
  backup: Backup;
  backupPassphrase: Backup;
}

const v = testdata('envelope-v2-vectors.json') as Vectors;
const alg = (s: string): Algorithm => {
  assert.ok(isAlgorithm(s), s);
  return s;
};
const ident = (name: string): Identity => {
  const i = v.identities[name];
  assert.ok(i, name);
  return i;
};
const kemKey = (keyId: string): KemKey => {
  const k = v.kemKeys.find((x) => x.keyId === keyId);
  assert.ok(k, keyId);
  return k;
};
const metaOf = (e: EnvelopeVector): MetaV2 => ({
  kind: e.meta.kind, objectId: e.meta.oid, senderId: e.meta.sid, conversationId: e.meta.cid,
  attachmentId: e.meta.attachmentId, name: e.meta.name, mimeType: e.meta.mimeType,
});

test('v2 vectors: identity keys from seeds', () => {
  for (const [name, i] of Object.entries(v.identities)) {
    const kp = identityFromSeed(unb64(i.seed));
    assert.equal(b64(kp.publicKey), i.publicKey, name);
    assert.equal(hex(sha256(kp.publicKey)), i.publicKeySha256);
    assert.equal(fingerprint(kp.publicKey), i.fingerprint);
  }
});

test('v2 vectors: KEM key certificates, deterministic and verified', () => {
  for (const k of v.kemKeys) {
    const kp = keyPairFromSeed(alg(k.algorithm), unb64(k.seed));
    assert.equal(b64(kp.publicKey), k.publicKey, k.keyId);
    const msg = certificateMessage(kp.algorithm, k.seq, kp.publicKey);
    assert.equal(new TextDecoder().decode(msg.subarray(0, k.certificateMessagePrefix.length)), k.certificateMessagePrefix);
    const owner = identityFromSeed(unb64(ident(k.owner).seed));
    assert.equal(b64(certifyKemKey(owner, kp.algorithm, k.seq, kp.publicKey, { deterministic: true })), k.certificateDeterministic);
    const cert = unb64(k.certificateDeterministic);
    assert.ok(verifyKemCertificate(owner.publicKey, kp.algorithm, k.seq, kp.publicKey, cert));
    // A hedged certificate differs but verifies too.
    assert.ok(verifyKemCertificate(owner.publicKey, kp.algorithm, k.seq, kp.publicKey, certifyKemKey(owner, kp.algorithm, k.seq, kp.publicKey)));
    const other = identityFromSeed(unb64(ident(k.owner === 'bob' ? 'carol' : 'bob').seed));
    assert.ok(!verifyKemCertificate(other.publicKey, kp.algorithm, k.seq, kp.publicKey, cert), 'another identity');
    assert.ok(!verifyKemCertificate(owner.publicKey, kp.algorithm, k.seq + 1, kp.publicKey, cert), 'another seq');
    assert.ok(!verifyKemCertificate(owner.publicKey, kp.algorithm, k.seq, flip(kp.publicKey, 100), cert), 'another key');
    assert.ok(!verifyKemCertificate(owner.publicKey, kp.algorithm, k.seq, kp.publicKey, flip(cert, 10)), 'a flipped signature');
  }
  const pk = keyPairFromSeed('ML_KEM_768', new Uint8Array(64)).publicKey;
  for (const bad of [0, -1, 2147483648, 1.5]) assert.throws(() => certificateMessage('ML_KEM_768', bad, pk), /seq/);
});

for (const e of v.envelopes) {
  test(`v2 vectors: ${e.name}: seal, transcript, signature, open`, async () => {
    const m = metaOf(e);
    const sender = identityFromSeed(unb64(ident(e.sender).seed));
    const recipients: Recipient[] = e.recipients.map((r) => {
      const k = kemKey(r.keyId);
      return { userId: k.userId, keyId: k.keyId, algorithm: alg(k.algorithm), publicKey: unb64(k.publicKey) };
    });
    const seeds = recipients.map((r) => unb64(e.encapSeeds[r.userId] ?? ''));
    const signed = await sealV2(m, unb64(e.plaintext), recipients, sender, { random: queue(unb64(e.cek), unb64(e.nonce), ...seeds), deterministic: true });
    assert.equal(b64(signed.envelope.ciphertext), e.envelope.ciphertext);
    assert.equal(b64(signed.envelope.nonce), e.envelope.nonce);
    assert.deepEqual(signed.envelope.keys.map((k) => ({ userId: k.userId, keyId: k.keyId, kemCiphertext: b64(k.kemCiphertext), wrappedKey: b64(k.wrappedKey) })), e.envelope.keys);
    assert.deepEqual(signed.keyDigests.map(b64), e.keyDigests);
    const t = transcript(m, signed.envelope.nonce, signed.envelope.ciphertext, signed.keyDigests);
    assert.equal(hex(t), e.transcriptHex);
    assert.equal(hex(sha256(t)), e.transcriptSha256);
    assert.equal(b64(signed.signature), e.envelope.signature);

    // Every reader opens the stored envelope (not our output) with its own myKey.
    const ct = unb64(e.envelope.ciphertext);
    const nonce = unb64(e.envelope.nonce);
    const keyDigests = e.keyDigests.map(unb64);
    const signature = unb64(e.envelope.signature);
    assert.ok(verifyEnvelope(sender.publicKey, m, ct, nonce, keyDigests, signature));
    for (const wk of e.envelope.keys) {
      const myKey = fromWireKey(wk);
      const kk = kemKey(wk.keyId);
      const kp = keyPairFromSeed(alg(kk.algorithm), unb64(kk.seed));
      assert.deepEqual(await openV2(m, { ciphertext: ct, nonce, myKey, keyDigests, signature }, sender.publicKey, kp), unb64(e.plaintext));

      const other = identityFromSeed(unb64(ident('carol').seed)).publicKey;
      const tampered: [string, MetaV2, Partial<{ ciphertext: Uint8Array; nonce: Uint8Array; myKey: RecipientKey; keyDigests: Uint8Array[]; signature: Uint8Array }>, Uint8Array][] = [
        ['another attachment id', { ...m, attachmentId: m.kind === 'msg' ? 'dddddddd-0000-4000-8000-000000000009' : '' , name: m.kind === 'doc' ? m.name + ' ' : '' }, {}, sender.publicKey],
        ['another conversation', { ...m, conversationId: m.objectId }, {}, sender.publicKey],
        ['a flipped ciphertext', m, { ciphertext: flip(ct, 5) }, sender.publicKey],
        ['a flipped nonce', m, { nonce: flip(nonce) }, sender.publicKey],
        ['a flipped signature', m, { signature: flip(signature, 100) }, sender.publicKey],
        ['a truncated signature', m, { signature: signature.subarray(1) }, sender.publicKey],
        ['leaves in another order', m, { keyDigests: [...keyDigests].reverse() }, sender.publicKey],
        ['its own leaf twice', m, { keyDigests: [leaf(myKey), leaf(myKey)] }, sender.publicKey],
        ['its own leaf missing', m, { keyDigests: keyDigests.filter((d) => b64(d) !== b64(leaf(myKey))) }, sender.publicKey],
        ['a short leaf', m, { keyDigests: keyDigests.map((d) => d.subarray(1)) }, sender.publicKey],
        ['a flipped wrapped key', m, { myKey: { ...myKey, wrappedKey: flip(myKey.wrappedKey) } }, sender.publicKey],
        ['another identity key', m, {}, other],
      ];
      for (const [what, mm, r, ik] of tampered) {
        await assert.rejects(() => openV2(mm, { ciphertext: ct, nonce, myKey, keyDigests, signature, ...r }, ik, kp), CannotOpenError, `${e.name}: ${wk.keyId} opened with ${what}`);
      }
    }
  });
}

test('v2: random round trip; version 1 labels do not open version 2', async () => {
  const alice = generateIdentity();
  const me = generateKeyPair('X_WING');
  const m: MetaV2 = { kind: 'msg', objectId: '00000000-0000-4000-8000-000000000001', senderId: '00000000-0000-4000-8000-000000000002', conversationId: '00000000-0000-4000-8000-000000000003', attachmentId: '', name: '', mimeType: '' };
  const signed = await sealV2(m, 'hej', [{ userId: m.senderId, keyId: '00000000-0000-4000-8000-000000000004', algorithm: 'X_WING', publicKey: me.publicKey }], alice);
  const myKey = signed.envelope.keys[0]!;
  const r = { ciphertext: signed.envelope.ciphertext, nonce: signed.envelope.nonce, myKey, keyDigests: signed.keyDigests, signature: signed.signature };
  assert.equal(new TextDecoder().decode(await openV2(m, r, alice.publicKey, me)), 'hej');
  await assert.rejects(() => openV1(m, r.ciphertext, r.nonce, myKey, me), CannotOpenError);
  // Re-signing the same envelope gives another (hedged) signature that verifies.
  const again = signEnvelope(alice, m, signed.envelope);
  assert.ok(verifyEnvelope(alice.publicKey, m, r.ciphertext, r.nonce, r.keyDigests, again.signature));
  await assert.rejects(sealV2({ ...m, name: 'x' }, 'hej', [], alice), /no name/);
  await assert.rejects(sealV2({ ...m, kind: 'doc', attachmentId: 'a' }, 'hej', [], alice), /no attachment/);
});

test('v2 vectors: safety numbers', () => {
  for (const s of v.safetyNumbers) {
    const a = ident(s.a);
    const b = ident(s.b);
    const pa = { userId: a.uid, identityKey: unb64(a.publicKey) };
    const pb = { userId: b.uid, identityKey: unb64(b.publicKey) };
    assert.equal(safetyNumber(pa, pb), s.number);
    assert.equal(safetyNumber(pb, pa), s.number, 'both users see the same number');
    assert.deepEqual(formatSafetyNumber(s.number).length, 12);
  }
});

test('v2 vectors: Argon2id', async () => {
  for (const a of v.argon2id) {
    assert.equal(hex(await deriveBackupKey(a.secret, unb64(a.salt), a)), a.key, a.secret);
  }
});

for (const name of ['backup', 'backupPassphrase'] as const) {
  test(`v2 vectors: ${name}: sealed byte for byte, opened, refused when wrong`, async () => {
    const bk = v[name];
    const plain = JSON.parse(bk.plaintextJson) as { identitySeed: string; kemKeys: { keyId: string; algorithm: string; seed: string }[] };
    const contents: BackupContents = {
      identitySeed: unb64(plain.identitySeed),
      kemKeys: plain.kemKeys.map((k) => ({ keyId: k.keyId, algorithm: alg(k.algorithm), seed: unb64(k.seed) })),
    };
    const sealed = await sealBackup(bk.uid, bk.secret, contents, { params: bk, random: queue(unb64(bk.salt), unb64(bk.nonce)) });
    assert.equal(sealed, bk.sealed);
    const opened = await openBackup(bk.uid, bk.secretNfd ?? bk.secret, bk.sealed);
    assert.deepEqual(opened, contents);

    const o = JSON.parse(bk.sealed) as Record<string, unknown>;
    const variants: [string, string, string, string][] = [
      ['a wrong secret', bk.uid, bk.secret + '!', bk.sealed],
      ['another user id', '33333333-3333-4333-8333-333333333333', bk.secret, bk.sealed],
      ['v 1', bk.uid, bk.secret, JSON.stringify({ ...o, v: 1 })],
      ['v as a string', bk.uid, bk.secret, JSON.stringify({ ...o, v: '2' })],
      ['t as a string', bk.uid, bk.secret, JSON.stringify({ ...o, t: String(o['t']) })],
      ['kdf scrypt', bk.uid, bk.secret, JSON.stringify({ ...o, kdf: 'scrypt' })],
      ['t 1', bk.uid, bk.secret, JSON.stringify({ ...o, t: 1 })],
      ['t 11', bk.uid, bk.secret, JSON.stringify({ ...o, t: 11 })],
      ['m too low', bk.uid, bk.secret, JSON.stringify({ ...o, m: 19455 })],
      ['m over 256 MiB', bk.uid, bk.secret, JSON.stringify({ ...o, m: 262145 })],
      ['p 5', bk.uid, bk.secret, JSON.stringify({ ...o, p: 5 })],
      ['a 15-byte salt', bk.uid, bk.secret, JSON.stringify({ ...o, salt: b64(new Uint8Array(15)) })],
      ['an 11-byte nonce', bk.uid, bk.secret, JSON.stringify({ ...o, nonce: b64(new Uint8Array(11)) })],
      ['not JSON', bk.uid, bk.secret, 'nope'],
      ['a flipped ciphertext', bk.uid, bk.secret, JSON.stringify({ ...o, ciphertext: b64(flip(unb64(String(o['ciphertext'])), 3)) })],
    ];
    for (const [what, uid, secret, s] of variants) {
      await assert.rejects(() => openBackup(uid, secret, s), CannotOpenBackupError, `${name}: opened with ${what}`);
    }
  });
}

test('backup: recovery keys, short secrets refused, random round trip', async () => {
  const rk = generateRecoveryKey();
  assert.match(rk, /^[A-Za-z0-9_-]{43}$/);
  const contents: BackupContents = { identitySeed: new Uint8Array(32).fill(7), kemKeys: [{ keyId: 'k', algorithm: 'ML_KEM_768', seed: new Uint8Array(64).fill(1) }] };
  await assert.rejects(sealBackup('u', 'short secret', { ...contents, identitySeed: new Uint8Array(31) }), /identity seed/);
  await assert.rejects(sealBackup('u', 'eleven char', contents), /at least 12/);
  await assert.rejects(sealBackup('u', rk, contents, { params: { t: 1, m: 19456, p: 1 } }), /out of bounds/);
  const sealed = await sealBackup('u', rk, contents);
  assert.deepEqual(await openBackup('u', rk, sealed), contents);
});

test('a backup resealed with the kept key (a rotation) opens with the same secret, under a new nonce', async () => {
  const uid = '11111111-1111-4111-8111-111111111111';
  const secret = generateRecoveryKey();
  const first: BackupContents = { identitySeed: generateIdentity().seed, kemKeys: [{ keyId: 'k1', algorithm: 'ML_KEM_768', seed: generateKeyPair('ML_KEM_768').seed }] };
  const bk = await newBackupKey(secret);
  const sealed1 = await sealBackupWithKey(uid, bk, first);
  const opened = await openBackupWithKey(uid, secret, sealed1);
  assert.deepEqual(opened.contents, first);
  assert.deepEqual(opened.key, bk, 'opening gives the key back, to seal the next backup with');
  const second: BackupContents = { ...first, kemKeys: [...first.kemKeys, { keyId: 'k2', algorithm: 'X_WING', seed: generateKeyPair('X_WING').seed }] };
  const sealed2 = await sealBackupWithKey(uid, opened.key, second);
  const [o1, o2] = [JSON.parse(sealed1), JSON.parse(sealed2)] as { salt: string; nonce: string }[];
  assert.equal(o2!.salt, o1!.salt, 'same secret, same salt');
  assert.notEqual(o2!.nonce, o1!.nonce, 'a fresh nonce');
  assert.deepEqual(await openBackup(uid, secret, sealed2), second);
  await assert.rejects(openBackup(uid, generateRecoveryKey(), sealed2), CannotOpenBackupError);
  await assert.rejects(newBackupKey('too short'), /at least 12/);
});
