// QChat sealed envelope, versions 1 and 2, written from docs/PROTOCOL.md and
// docs/PROTOCOL-V2.md only (no code shared with the server, pqcrypto or web/lib).
//
// KEMs: @noble/post-quantum (ml_kem768, and ml_kem768_x25519 for X_WING).
// Signatures (v2): @noble/post-quantum ml_dsa65, context string "qchat/v2".
// Key derivation: @noble/hashes HKDF-SHA256; backup KDF @noble/hashes argon2id.
// Content and backup cipher: WebCrypto AES-256-GCM.
// Secret keys are kept as seeds: 64 bytes (d || z) for ML_KEM_768, 32 bytes for X_WING,
// 32 bytes (xi) for an ML-DSA-65 identity key.

import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { argon2idAsync } from '@noble/hashes/argon2.js';

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

// The labels of the aad and the wrap info: qchat/v1/... or, for signed (v2) content, qchat/v2/....
function label(version) {
  if (version !== 1 && version !== 2) throw new Error(`envelope version must be 1 or 2, got ${version}`);
  return `qchat/v${version}`;
}

export function aad({ kind, objectId, senderId, conversationId }, version = 1) {
  return enc.encode(`${label(version)}/${kind}|${objectId}|${senderId}|${conversationId}`);
}

export function hkdfInfo(objectId, userId, keyId, version = 1) {
  return `${label(version)}/wrap|${objectId}|${userId}|${keyId}`;
}

export function deriveKEK(sharedSecret, objectId, userId, keyId, version = 1) {
  return hkdf(sha256, sharedSecret, new Uint8Array(0), enc.encode(hkdfInfo(objectId, userId, keyId, version)), KEY_SIZE);
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
// version 2 uses the qchat/v2 labels (sealSigned below also signs).
// Returns the envelope in wire form (base64 strings), ready for SendMessageInput.
export async function seal(header, plaintext, recipients, { random = defaultRandom, trace, version = 1 } = {}) {
  checkHeader(header);
  label(version);
  if (!recipients.length) throw new Error('seal: no recipients');
  const seen = new Set();
  for (const [i, r] of recipients.entries()) {
    // Key ids are opaque strings in v2 (the spec's vectors use readable ones); v1 wants UUIDs.
    if (!isCanonicalUUID(r.userId) || !(version === 2 ? typeof r.keyId === 'string' && r.keyId !== '' : isCanonicalUUID(r.keyId))) {
      throw new Error(`seal: recipient ${i}: ids must be canonical UUIDs`);
    }
    if (seen.has(r.userId)) throw new Error(`seal: recipient ${i}: user ${r.userId} appears twice`);
    seen.add(r.userId);
    const a = alg(r.algorithm);
    if (r.publicKey.length !== a.publicKey) throw new Error(`seal: recipient ${i}: ${r.algorithm} public key must be ${a.publicKey} bytes`);
  }
  const pt = typeof plaintext === 'string' ? enc.encode(plaintext) : plaintext;
  const cek = random(KEY_SIZE);
  const nonce = random(NONCE_SIZE);
  const ciphertext = await gcmSeal(cek, nonce, pt, aad(header, version));
  trace?.({ cek, nonce });
  const keys = [];
  for (const r of recipients) {
    const a = alg(r.algorithm);
    const encSeed = random(a.encSeed);
    const { cipherText, sharedSecret } = a.kem.encapsulate(r.publicKey, encSeed);
    const kek = deriveKEK(sharedSecret, header.objectId, r.userId, r.keyId, version);
    const wrappedKey = await gcmSeal(kek, new Uint8Array(NONCE_SIZE), cek);
    trace?.({ userId: r.userId, encapsulationSeed: encSeed, sharedSecret, hkdfInfo: hkdfInfo(header.objectId, r.userId, r.keyId, version), kek });
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
// The ciphertext is base64 (a message) or raw bytes (a downloaded document).
// version 1 only: signed content goes through openSigned, which verifies first.
// Returns the plaintext bytes.
export async function openBytes(header, ciphertextB64, nonceB64, recipientKey, keyPair) {
  return openVersion(header, ciphertextB64, nonceB64, recipientKey, keyPair, 1);
}

async function openVersion(header, ciphertext, nonceB64, recipientKey, keyPair, version) {
  try {
    checkHeader(header);
    const a = alg(keyPair.algorithm);
    const ct = typeof ciphertext === 'string' ? unb64(ciphertext) : ciphertext;
    const nonce = unb64(nonceB64);
    const kemCt = unb64(recipientKey.kemCiphertext);
    const wrapped = unb64(recipientKey.wrappedKey);
    if (nonce.length !== NONCE_SIZE || wrapped.length !== WRAPPED_KEY_SIZE || kemCt.length !== a.cipherText) throw new Error('sizes');
    const ss = a.kem.decapsulate(kemCt, secretKeyOf(keyPair));
    const kek = deriveKEK(ss, header.objectId, recipientKey.userId, recipientKey.keyId, version);
    const cek = await gcmOpen(kek, new Uint8Array(NONCE_SIZE), wrapped);
    return await gcmOpen(cek, nonce, ct, aad(header, version));
  } catch {
    throw new CannotOpenError();
  }
}

const dec = new TextDecoder('utf-8', { fatal: true });

function utf8(pt) {
  try {
    return dec.decode(pt);
  } catch {
    throw new CannotOpenError();
  }
}

// open is openBytes for a message: the plaintext as a string (UTF-8).
export async function open(header, ciphertextB64, nonceB64, recipientKey, keyPair) {
  return utf8(await openBytes(header, ciphertextB64, nonceB64, recipientKey, keyPair));
}

// ---- version 2: identity keys ------------------------------------------------------

// Every ML-DSA-65 signature of the protocol uses this FIPS 204 context string.
export const CONTEXT = enc.encode('qchat/v2');
export const IDENTITY = { publicKey: 1952, signature: 3309, seed: 32 };
export const LEAF_SIZE = 32;

{
  const l = ml_dsa65.lengths;
  if (l.publicKey !== IDENTITY.publicKey || l.signature !== IDENTITY.signature || l.seed !== IDENTITY.seed) {
    throw new Error(`ML-DSA-65: library sizes ${JSON.stringify(l)} do not match envelope-v2.md`);
  }
}

const identitySecrets = new Map(); // hex(seed) -> expanded secret key

// identityFromSeed is FIPS 204 KeyGen from the 32-byte seed xi: {seed, publicKey}.
export function identityFromSeed(seed) {
  if (!(seed instanceof Uint8Array) || seed.length !== IDENTITY.seed) throw new Error(`identity seed must be ${IDENTITY.seed} bytes`);
  const { publicKey, secretKey } = ml_dsa65.keygen(Uint8Array.from(seed));
  identitySecrets.set(hex(seed), secretKey);
  return { seed: Uint8Array.from(seed), publicKey };
}

export function generateIdentity(random = defaultRandom) {
  return identityFromSeed(random(IDENTITY.seed));
}

function identitySecret(identity) {
  const k = hex(identity.seed);
  if (!identitySecrets.has(k)) identityFromSeed(identity.seed);
  return identitySecrets.get(k);
}

// sign is ML-DSA-65 (pure) with the context qchat/v2. Hedged by default;
// deterministic (rnd = 32 zero bytes) to reproduce the spec's vectors.
export function sign(identity, message, { deterministic = false } = {}) {
  const opts = { context: CONTEXT };
  if (deterministic) opts.extraEntropy = false;
  return ml_dsa65.sign(message, identitySecret(identity), opts);
}

// verify never throws: wrong sizes or a bad signature are false.
export function verify(publicKey, message, signature) {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== IDENTITY.publicKey) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== IDENTITY.signature) return false;
  try {
    return ml_dsa65.verify(signature, message, publicKey, { context: CONTEXT }) === true;
  } catch {
    return false;
  }
}

// ---- version 2: KEM key certificates -----------------------------------------------

export const MAX_SEQ = 2 ** 31 - 1;

// certificateMessage is UTF-8("qchat/v2/kem-key|{alg}|{seq}|") || pk.
export function certificateMessage(algorithm, seq, publicKey) {
  const a = alg(algorithm);
  if (!Number.isInteger(seq) || seq < 1 || seq > MAX_SEQ) throw new Error(`certificate seq must be an integer from 1 to 2^31-1, got ${seq}`);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== a.publicKey) throw new Error(`${algorithm} public key must be ${a.publicKey} bytes`);
  return concat(enc.encode(`qchat/v2/kem-key|${algorithm}|${seq}|`), publicKey);
}

export function certifyKEMKey(identity, algorithm, seq, publicKey, opts) {
  return sign(identity, certificateMessage(algorithm, seq, publicKey), opts);
}

export function verifyKEMKeyCertificate(identityPublicKey, algorithm, seq, publicKey, signature) {
  let m;
  try {
    m = certificateMessage(algorithm, seq, publicKey);
  } catch {
    return false;
  }
  return verify(identityPublicKey, m, signature);
}

// ---- version 2: the signed transcript ------------------------------------------------

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function u32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

// lp is the spec's enc(x): uint32_be(len(x)) || x; strings are their UTF-8 bytes.
function lp(x) {
  const b = typeof x === 'string' ? enc.encode(x) : x;
  return concat(u32(b.length), b);
}

const bytesOf = (x) => (typeof x === 'string' ? unb64(x) : x);

// leaf(k) = SHA-256(enc(userId) || enc(keyId) || enc(kemCiphertext) || enc(wrappedKey)) for a
// recipient key in wire form (kemCiphertext and wrappedKey base64, or raw bytes).
export function leaf({ userId, keyId, kemCiphertext, wrappedKey }) {
  return sha256(concat(lp(userId), lp(keyId), lp(bytesOf(kemCiphertext)), lp(bytesOf(wrappedKey))));
}

// Bytewise order of the UTF-8 user ids.
export function compareIds(a, b) {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// keyDigests are the leaves of the recipient keys in ascending order of userId (base64).
export function keyDigests(keys) {
  return [...keys].sort((x, y) => compareIds(x.userId, y.userId)).map((k) => b64(leaf(k)));
}

// transcript builds T. meta: {kind, objectId, senderId, conversationId, attachmentId, name,
// mimeType} (the last three default to ''); nonce and ciphertext base64 or raw bytes;
// leaves: 32-byte arrays in the signed order.
export function transcript(meta, nonce, ciphertext, leaves) {
  return concat(
    lp('qchat/v2/envelope'), lp(meta.kind), lp(meta.objectId), lp(meta.senderId), lp(meta.conversationId),
    lp(meta.attachmentId ?? ''), lp(meta.name ?? ''), lp(meta.mimeType ?? ''),
    lp(bytesOf(nonce)), lp(sha256(bytesOf(ciphertext))),
    u32(leaves.length), ...leaves,
  );
}

// sealSigned seals with the v2 labels and signs: the envelope in wire form plus
// signature and keyDigests (what the server will return to readers). trace, if
// given, also receives {transcript}.
export async function sealSigned(meta, plaintext, recipients, identity, { random = defaultRandom, trace, deterministic = false } = {}) {
  const env = await seal(meta, plaintext, recipients, { random, trace, version: 2 });
  const digests = keyDigests(env.keys);
  const t = transcript(meta, env.nonce, env.ciphertext, digests.map(unb64));
  trace?.({ transcript: t });
  const signature = sign(identity, sha256(t), { deterministic });
  return { ...env, signature: b64(signature), keyDigests: digests };
}

// signEnvelope signs an envelope already sealed with version 2 (used to re-sign, or to
// sign a document whose ciphertext was produced separately).
export function signEnvelope(meta, { nonce, ciphertext, keys }, identity, opts) {
  const digests = keyDigests(keys);
  return { signature: b64(sign(identity, sha256(transcript(meta, nonce, ciphertext, digests.map(unb64))), opts)), keyDigests: digests };
}

// verifyEnvelope checks a received v2 envelope: keyDigests present, every entry 32
// bytes, myKey's leaf in it exactly once, and the signature by senderIdentityKey over
// the transcript rebuilt from what was received. Returns a boolean, never throws.
export function verifyEnvelope(meta, { nonce, ciphertext, signature, keyDigests: digests }, myKey, senderIdentityKey) {
  try {
    checkHeader(meta);
    if (!Array.isArray(digests) || digests.length === 0) return false;
    const leaves = digests.map(unb64);
    if (leaves.some((l) => l.length !== LEAF_SIZE)) return false;
    const mine = b64(leaf(myKey));
    if (digests.filter((d) => d === mine).length !== 1) return false;
    return verify(senderIdentityKey, sha256(transcript(meta, nonce, ciphertext, leaves)), unb64(signature));
  } catch {
    return false;
  }
}

// openSigned opens a version 2 envelope: verify (above), then open with the v2 labels.
// Every failure, a signature that does not verify included, is CannotOpenError.
// Returns the plaintext bytes.
export async function openSignedBytes(meta, envelope, myKey, keyPair, senderIdentityKey) {
  if (!verifyEnvelope(meta, envelope, myKey, senderIdentityKey)) throw new CannotOpenError();
  return openVersion(meta, envelope.ciphertext, envelope.nonce, myKey, keyPair, 2);
}

export async function openSigned(meta, envelope, myKey, keyPair, senderIdentityKey) {
  return utf8(await openSignedBytes(meta, envelope, myKey, keyPair, senderIdentityKey));
}

// ---- version 2: safety numbers -------------------------------------------------------

export const SAFETY_ROUNDS = 5200;

// safetyDigits(uid, ik): 30 digits from SHA-512(label || 0 || uid || 0 || ik), 5200 rounds of
// h = SHA-512(h || ik), then six 5-byte big-endian chunks mod 100000.
export function safetyDigits(userId, identityKey) {
  let h = sha512(concat(enc.encode('qchat/v2/safety'), [0], enc.encode(userId), [0], identityKey));
  for (let i = 0; i < SAFETY_ROUNDS; i++) h = sha512.create().update(h).update(identityKey).digest();
  let out = '';
  for (let i = 0; i < 6; i++) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + h[i * 5 + j]; // 40 bits: exact in a double
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

// safetyNumber of two users {userId, identityKey}: 60 digits, the user whose id sorts
// first (bytewise) first. Both sides compute the same number.
export function safetyNumber(a, b) {
  const [x, y] = compareIds(a.userId, b.userId) <= 0 ? [a, b] : [b, a];
  return safetyDigits(x.userId, x.identityKey) + safetyDigits(y.userId, y.identityKey);
}

// Twelve groups of five digits.
export function formatSafetyNumber(n) {
  return n.match(/.{5}/g).join(' ');
}

// ---- version 2: key backup -----------------------------------------------------------

export const BACKUP_PARAMS = { t: 2, m: 19456, p: 1 };
const BACKUP_BOUNDS = { t: [2, 10], m: [19456, 262144], p: [1, 4] };
export const MAX_BACKUP_SIZE = 64 * 1024;
export const MIN_PASSPHRASE = 12;

export class CannotOpenBackupError extends Error {
  constructor() {
    super('cannot open key backup');
    this.name = 'CannotOpenBackupError';
  }
}

// A passphrase counts code points of its NFC form.
export function passphraseLongEnough(s) {
  return [...s.normalize('NFC')].length >= MIN_PASSPHRASE;
}

// A recovery key: 32 random bytes as base64url without padding (43 characters); the
// backup secret is that text.
export function generateRecoveryKey(random = defaultRandom) {
  return Buffer.from(random(32)).toString('base64url');
}

function checkParams({ t, m, p }) {
  for (const [k, v] of Object.entries({ t, m, p })) {
    const [lo, hi] = BACKUP_BOUNDS[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) return false;
  }
  return true;
}

// backupKey = Argon2id(UTF-8(NFC(secret)), salt, t, m KiB, p, 32 bytes).
export async function backupKey(secret, salt, { t, m, p }) {
  if (!checkParams({ t, m, p })) throw new Error(`argon2id parameters t=${t} m=${m} p=${p} out of bounds`);
  return argon2idAsync(enc.encode(secret.normalize('NFC')), salt, { t, m, p, dkLen: KEY_SIZE });
}

// backupPlaintext is the JSON the backup seals: {identitySeed, kemKeys: [{keyId, algorithm, seed}]}.
export function backupPlaintext(identitySeed, kemKeys) {
  return JSON.stringify({
    identitySeed: b64(identitySeed),
    kemKeys: kemKeys.map((k) => ({ keyId: k.keyId, algorithm: k.algorithm, seed: b64(k.seed) })),
  });
}

const backupAAD = (uid) => enc.encode(`qchat/v2/backup|${uid}`);

// sealBackup seals plaintextJson (a string) for user uid with secret; salt and nonce
// default to fresh random bytes, the parameters to the minimum. Returns the sealed JSON.
export async function sealBackup(uid, secret, plaintextJson, { random = defaultRandom, salt, nonce, params = BACKUP_PARAMS } = {}) {
  const s = salt ?? random(16);
  const n = nonce ?? random(NONCE_SIZE);
  if (s.length !== 16 || n.length !== NONCE_SIZE) throw new Error('backup salt must be 16 bytes and nonce 12');
  const key = await backupKey(secret, s, params);
  const ct = await gcmSeal(key, n, enc.encode(plaintextJson), backupAAD(uid));
  const sealed = JSON.stringify({ v: 2, kdf: 'argon2id', t: params.t, m: params.m, p: params.p, salt: b64(s), nonce: b64(n), ciphertext: b64(ct) });
  if (enc.encode(sealed).length > MAX_BACKUP_SIZE) throw new Error(`sealed backup over ${MAX_BACKUP_SIZE} bytes`);
  return sealed;
}

// openBackup checks the sealed form before any key derivation (a server cannot make
// the client spend unbounded memory), opens it and checks the plaintext's shape.
// Returns {json, identitySeed, kemKeys: [{keyId, algorithm, seed}]}. Every failure
// is CannotOpenBackupError.
export async function openBackup(uid, secret, sealed) {
  let json;
  try {
    if (typeof sealed !== 'string' || enc.encode(sealed).length > MAX_BACKUP_SIZE) throw new Error('size');
    const o = JSON.parse(sealed);
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error('shape');
    if (o.v !== 2 || o.kdf !== 'argon2id' || !checkParams(o)) throw new Error('parameters');
    const salt = unb64(o.salt);
    const nonce = unb64(o.nonce);
    const ct = unb64(o.ciphertext);
    if (salt.length !== 16 || nonce.length !== NONCE_SIZE || ct.length < 16) throw new Error('sizes');
    const key = await backupKey(secret, salt, o);
    json = dec.decode(await gcmOpen(key, nonce, ct, backupAAD(uid)));
    const pt = JSON.parse(json);
    const identitySeed = unb64(pt.identitySeed);
    if (identitySeed.length !== IDENTITY.seed || !Array.isArray(pt.kemKeys)) throw new Error('plaintext');
    const kemKeys = pt.kemKeys.map((k) => {
      const seed = unb64(k.seed);
      if (typeof k.keyId !== 'string' || !k.keyId || seed.length !== alg(k.algorithm).seed) throw new Error('kem key');
      return { keyId: k.keyId, algorithm: k.algorithm, seed };
    });
    return { json, identitySeed, kemKeys };
  } catch {
    throw new CannotOpenBackupError();
  }
}
