// Version 1 against pqcrypto/testdata/envelope-v1.json, an envelope sealed by
// the Go implementation: the same random stream gives the same bytes here
// (so Go opens what this library seals), and the stored envelope opens here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Algorithm, CannotOpenError, type Header, type SealTrace, aad, b64, fingerprint, fromWireKey, generateKeyPair, isAlgorithm,
  keyPairFromSeed, openV1, openWireV1, sealV1, sizes, textOf, toWire, unb64,
} from '../src/index.js';
import { ctrStream, flip, testdata } from './helpers.js';

interface V1Vector {
  randomness: { label: string; construction: string };
  header: Header;
  aad: string;
  plaintext: string;
  cek: string;
  recipients: {
    userId: string; keyId: string; algorithm: string; seed: string; publicKey: string; fingerprint: string;
    encapsulationSeed: string; sharedSecret: string; hkdfInfo: string; kek: string;
  }[];
  envelope: { ciphertext: string; nonce: string; keys: { userId: string; keyId: string; kemCiphertext: string; wrappedKey: string }[] };
}

const v = testdata('envelope-v1.json') as V1Vector;
const alg = (s: string): Algorithm => {
  assert.ok(isAlgorithm(s), s);
  return s;
};
const keyPairs = v.recipients.map((r) => keyPairFromSeed(alg(r.algorithm), unb64(r.seed)));

test('v1 vector: keys from seeds, fingerprints, aad', () => {
  assert.equal(new TextDecoder().decode(aad(v.header)), v.aad);
  v.recipients.forEach((r, i) => {
    assert.equal(b64(keyPairs[i]!.publicKey), r.publicKey, `recipient ${i} public key`);
    assert.equal(fingerprint(keyPairs[i]!.publicKey), r.fingerprint);
  });
  assert.match(v.randomness.construction, /SHA-256\(UTF-8\(label\) \|\| uint32 big-endian counter\)/);
});

test('v1 vector: sealing reproduces the Go envelope byte for byte', async () => {
  const traces: SealTrace[] = [];
  const recipients = v.recipients.map((r, i) => ({ userId: r.userId, keyId: r.keyId, algorithm: alg(r.algorithm), publicKey: keyPairs[i]!.publicKey }));
  const env = await sealV1(v.header, unb64(v.plaintext), recipients, { random: ctrStream(v.randomness.label), trace: (t) => traces.push(t) });
  const first = traces[0];
  assert.ok(first?.step === 'content');
  assert.equal(b64(first.cek), v.cek);
  v.recipients.forEach((r, i) => {
    const t = traces[i + 1];
    assert.ok(t?.step === 'recipient');
    assert.equal(b64(t.encapsulationSeed), r.encapsulationSeed);
    assert.equal(b64(t.sharedSecret), r.sharedSecret, `${r.algorithm} shared secret`);
    assert.equal(t.hkdfInfo, r.hkdfInfo);
    assert.equal(b64(t.kek), r.kek);
  });
  assert.deepEqual(toWire(env), v.envelope);
});

test('v1 vector: the Go envelope opens for every recipient, and only under its header', async () => {
  const plaintext = textOf(unb64(v.plaintext));
  const ct = unb64(v.envelope.ciphertext);
  const nonce = unb64(v.envelope.nonce);
  for (const [i, r] of v.recipients.entries()) {
    const wk = v.envelope.keys.find((k) => k.userId === r.userId && k.keyId === r.keyId);
    assert.ok(wk);
    const kp = keyPairs[i]!;
    assert.equal(textOf(await openV1(v.header, ct, nonce, fromWireKey(wk), kp)), plaintext);
    assert.equal(textOf(await openWireV1(v.header, v.envelope.ciphertext, v.envelope.nonce, wk, kp)), plaintext);
    const other = keyPairs[(i + 1) % keyPairs.length]!;
    const bad: [string, () => Promise<Uint8Array>][] = [
      ['another conversation', () => openV1({ ...v.header, conversationId: v.header.objectId }, ct, nonce, fromWireKey(wk), kp)],
      ['another kind', () => openV1({ ...v.header, kind: 'doc' }, ct, nonce, fromWireKey(wk), kp)],
      ['another sender', () => openV1({ ...v.header, senderId: v.header.conversationId }, ct, nonce, fromWireKey(wk), kp)],
      ['the other recipient\'s key', () => openV1(v.header, ct, nonce, fromWireKey(wk), other)],
      ['a flipped ciphertext', () => openV1(v.header, flip(ct, 3), nonce, fromWireKey(wk), kp)],
      ['a flipped nonce', () => openV1(v.header, ct, flip(nonce), fromWireKey(wk), kp)],
      ['a flipped wrapped key', () => openV1(v.header, ct, nonce, { ...fromWireKey(wk), wrappedKey: flip(unb64(wk.wrappedKey), 40) }, kp)],
      ['a flipped KEM ciphertext', () => openV1(v.header, ct, nonce, { ...fromWireKey(wk), kemCiphertext: flip(unb64(wk.kemCiphertext), 7) }, kp)],
      ['another key id', () => openV1(v.header, ct, nonce, { ...fromWireKey(wk), keyId: v.header.objectId }, kp)],
      ['a short nonce', () => openV1(v.header, ct, nonce.subarray(1), fromWireKey(wk), kp)],
      ['no myKey', () => openWireV1(v.header, v.envelope.ciphertext, v.envelope.nonce, null, kp)],
      ['base64 that is not canonical', () => openWireV1(v.header, v.envelope.ciphertext + '\n', v.envelope.nonce, wk, kp)],
    ];
    for (const [what, f] of bad) await assert.rejects(f, CannotOpenError, `${r.algorithm}: opened with ${what}`);
  }
});

test('v1: random round trips through both algorithms; seal refuses bad input', async () => {
  const h: Header = { kind: 'msg', objectId: '00000000-0000-4000-8000-0000000000aa', senderId: '00000000-0000-4000-8000-000000000000', conversationId: '00000000-0000-4000-8000-0000000000cc' };
  const users = (['ML_KEM_768', 'X_WING'] as const).map((a, i) => ({ kp: generateKeyPair(a), userId: `00000000-0000-4000-8000-00000000000${i}`, keyId: `00000000-0000-4000-8000-00000000001${i}` }));
  const recipients = users.map((u) => ({ userId: u.userId, keyId: u.keyId, algorithm: u.kp.algorithm, publicKey: u.kp.publicKey }));
  const env = await sealV1(h, 'round trip ✓', recipients);
  assert.equal(env.keys.length, 2);
  for (const [i, u] of users.entries()) {
    assert.equal(textOf(await openV1(h, env.ciphertext, env.nonce, env.keys[i]!, u.kp)), 'round trip ✓');
    assert.equal(env.keys[i]!.kemCiphertext.length, sizes(u.kp.algorithm).cipherText);
  }
  await assert.rejects(sealV1(h, 'x', []), /no recipients/);
  await assert.rejects(sealV1({ ...h, objectId: 'not-a-uuid' }, 'x', recipients), /canonical UUID/);
  await assert.rejects(sealV1({ ...h, objectId: h.objectId.toUpperCase() }, 'x', recipients), /canonical UUID/);
  await assert.rejects(sealV1(h, 'x', [recipients[0]!, recipients[0]!]), /already is recipient 0/);
  await assert.rejects(sealV1(h, 'x', [{ ...recipients[0]!, publicKey: recipients[0]!.publicKey.subarray(1) }]), /public key must be 1184 bytes/);
  await assert.rejects(sealV1(h, 'x', [{ ...recipients[0]!, keyId: 'k|1' }]), /canonical UUID/);
});

test('base64 is strict', () => {
  assert.deepEqual(unb64('AAEC'), Uint8Array.of(0, 1, 2));
  for (const bad of ['AAE', 'AA==\n', 'AB==', '-_8=', ' AAEC', 'AA=A']) assert.throws(() => unb64(bad), /base64/, bad);
});
