// QChat sealed envelope, version 1, written from docs/PROTOCOL.md only.
//
// KEMs: @noble/post-quantum (ml_kem768, and ml_kem768_x25519 for X_WING).
// Key derivation: @noble/hashes HKDF-SHA256. Content cipher: WebCrypto AES-256-GCM.
// Secret keys are kept as seeds: 64 bytes (d || z) for ML_KEM_768, 32 bytes for X_WING.

import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();

export const NONCE_SIZE = 12;
export const KEY_SIZE = 32;
export const WRAPPED_KEY_SIZE = 48;

// The two algorithms of the envelope, by their API names. encSeed is the size of
// the encapsulation randomness (the order in which a deterministic random stream
// is consumed depends on it).
export const ALGORITHMS = {
  ML_KEM_768: { kem: ml_kem768, publicKey: 1184, cipherText: 1088, seed: 64, encSeed: 32 },
  X_WING: { kem: ml_kem768_x25519, publicKey: 1216, cipherText: 1120, seed: 32, encSeed: 64 },
};

function alg(name) {
  const a = ALGORITHMS[name];
  if (!a) throw new Error(`unknown algorithm ${JSON.stringify(name)}`);
  return a;
}

// Sanity check the library's sizes once against the spec's table.
for (const [name, a] of Object.entries(ALGORITHMS)) {
  const l = a.kem.lengths;
  if (l.publicKey !== a.publicKey || l.cipherText !== a.cipherText || l.seed !== a.seed || l.msgRand !== a.encSeed) {
    throw new Error(`${name}: library sizes ${JSON.stringify(l)} do not match envelope-v1.md`);
  }
}

// ---- encodings ---------------------------------------------------------------

export function b64(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

// Strict standard base64 with padding: the value must re-encode to itself.
export function unb64(s) {
  if (typeof s !== 'string') throw new Error('base64: not a string');
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new Error('base64: not canonical standard base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function hex(bytes) {
  return Buffer.from(bytes).toString('hex');
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function isCanonicalUUID(s) {
  return typeof s === 'string' && UUID_RE.test(s);
}

export function defaultRandom(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

// ---- keys --------------------------------------------------------------------

// Expanded secret keys are library-specific; cache them per seed (hex).
const secretCache = new Map();

export function keyPairFromSeed(algorithm, seed) {
  const a = alg(algorithm);
  if (seed.length !== a.seed) throw new Error(`${algorithm} seed must be ${a.seed} bytes, got ${seed.length}`);
  const { publicKey, secretKey } = a.kem.keygen(Uint8Array.from(seed));
  secretCache.set(algorithm + ':' + hex(seed), secretKey);
  return { algorithm, publicKey, seed: Uint8Array.from(seed) };
}

export function generateKeyPair(algorithm, random = defaultRandom) {
  return keyPairFromSeed(algorithm, random(alg(algorithm).seed));
}

function secretKeyOf(kp) {
  const k = kp.algorithm + ':' + hex(kp.seed);
  let sk = secretCache.get(k);
  if (!sk) {
    sk = alg(kp.algorithm).kem.keygen(Uint8Array.from(kp.seed)).secretKey;
    secretCache.set(k, sk);
  }
  return sk;
}

// First 16 bytes of SHA-256 over the raw public key, lower-case hex, eight groups of four.
export function fingerprint(publicKey) {
  const h = hex(sha256(publicKey).subarray(0, 16));
  return h.match(/.{4}/g).join(' ');
}

// ---- envelope ----------------------------------------------------------------

export function aad({ kind, objectId, senderId, conversationId }) {
  return enc.encode(`qchat/v1/${kind}|${objectId}|${senderId}|${conversationId}`);
}

export function hkdfInfo(objectId, userId, keyId) {
  return `qchat/v1/wrap|${objectId}|${userId}|${keyId}`;
}

export function deriveKEK(sharedSecret, objectId, userId, keyId) {
  return hkdf(sha256, sharedSecret, new Uint8Array(0), enc.encode(hkdfInfo(objectId, userId, keyId)), KEY_SIZE);
}

async function gcmSeal(key, nonce, plaintext, additionalData) {
  const k = await subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt']);
  const params = { name: 'AES-GCM', iv: nonce, tagLength: 128 };
  if (additionalData) params.additionalData = additionalData;
  return new Uint8Array(await subtle.encrypt(params, k, plaintext));
}

async function gcmOpen(key, nonce, ciphertext, additionalData) {
  const k = await subtle.importKey('raw', key, 'AES-GCM', false, ['decrypt']);
  const params = { name: 'AES-GCM', iv: nonce, tagLength: 128 };
  if (additionalData) params.additionalData = additionalData;
  return new Uint8Array(await subtle.decrypt(params, k, ciphertext));
}

function checkHeader(h) {
  if (h.kind !== 'msg' && h.kind !== 'doc') throw new Error(`kind must be msg or doc, got ${h.kind}`);
  for (const f of ['objectId', 'senderId', 'conversationId']) {
    if (!isCanonicalUUID(h[f])) throw new Error(`${f} ${JSON.stringify(h[f])} is not a lower-case canonical UUID`);
  }
}

// seal encrypts plaintext (Uint8Array or string) for recipients
// [{userId, keyId, algorithm, publicKey: Uint8Array}], the sender included.
// random(n) gives n random bytes; it is read in the order the spec's test
// vector documents: cek (32), nonce (12), then each recipient's encapsulation
// seed in input order. trace, if given, receives the intermediate values.
// Returns the envelope in wire form (base64 strings), ready for SendMessageInput.
export async function seal(header, plaintext, recipients, { random = defaultRandom, trace } = {}) {
  checkHeader(header);
  if (!recipients.length) throw new Error('seal: no recipients');
  const seen = new Set();
  for (const [i, r] of recipients.entries()) {
    if (!isCanonicalUUID(r.userId) || !isCanonicalUUID(r.keyId)) throw new Error(`seal: recipient ${i}: ids must be canonical UUIDs`);
    if (seen.has(r.userId)) throw new Error(`seal: recipient ${i}: user ${r.userId} appears twice`);
    seen.add(r.userId);
    const a = alg(r.algorithm);
    if (r.publicKey.length !== a.publicKey) throw new Error(`seal: recipient ${i}: ${r.algorithm} public key must be ${a.publicKey} bytes`);
  }
  const pt = typeof plaintext === 'string' ? enc.encode(plaintext) : plaintext;
  const cek = random(KEY_SIZE);
  const nonce = random(NONCE_SIZE);
  const ciphertext = await gcmSeal(cek, nonce, pt, aad(header));
  trace?.({ cek, nonce });
  const keys = [];
  for (const r of recipients) {
    const a = alg(r.algorithm);
    const encSeed = random(a.encSeed);
    const { cipherText, sharedSecret } = a.kem.encapsulate(r.publicKey, encSeed);
    const kek = deriveKEK(sharedSecret, header.objectId, r.userId, r.keyId);
    const wrappedKey = await gcmSeal(kek, new Uint8Array(NONCE_SIZE), cek);
    trace?.({ userId: r.userId, encapsulationSeed: encSeed, sharedSecret, hkdfInfo: hkdfInfo(header.objectId, r.userId, r.keyId), kek });
    keys.push({ userId: r.userId, keyId: r.keyId, kemCiphertext: b64(cipherText), wrappedKey: b64(wrappedKey) });
  }
  return { ciphertext: b64(ciphertext), nonce: b64(nonce), keys };
}

export class CannotOpenError extends Error {
  constructor() {
    super('cannot open envelope');
    this.name = 'CannotOpenError';
  }
}

// open decrypts with one recipient key as the API returns it (`myKey`:
// {userId, keyId, kemCiphertext, wrappedKey}, base64) and the key pair
// {algorithm, seed} of keyId. Every failure throws CannotOpenError.
// Returns the plaintext bytes.
export async function openBytes(header, ciphertextB64, nonceB64, recipientKey, keyPair) {
  try {
    checkHeader(header);
    const a = alg(keyPair.algorithm);
    const ct = unb64(ciphertextB64);
    const nonce = unb64(nonceB64);
    const kemCt = unb64(recipientKey.kemCiphertext);
    const wrapped = unb64(recipientKey.wrappedKey);
    if (nonce.length !== NONCE_SIZE || wrapped.length !== WRAPPED_KEY_SIZE || kemCt.length !== a.cipherText) throw new Error('sizes');
    const ss = a.kem.decapsulate(kemCt, secretKeyOf(keyPair));
    const kek = deriveKEK(ss, header.objectId, recipientKey.userId, recipientKey.keyId);
    const cek = await gcmOpen(kek, new Uint8Array(NONCE_SIZE), wrapped);
    return await gcmOpen(cek, nonce, ct, aad(header));
  } catch {
    throw new CannotOpenError();
  }
}

const dec = new TextDecoder('utf-8', { fatal: true });

// open is openBytes for a message: the plaintext as a string (UTF-8).
export async function open(header, ciphertextB64, nonceB64, recipientKey, keyPair) {
  const pt = await openBytes(header, ciphertextB64, nonceB64, recipientKey, keyPair);
  try {
    return dec.decode(pt);
  } catch {
    throw new CannotOpenError();
  }
}
