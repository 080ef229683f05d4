// The sealed envelope, versions 1 (docs/PROTOCOL.md §3-4) and 2 (PROTOCOL-V2
// §3), mirroring pqcrypto: AES-256-GCM content under a random content key
// (cek), and for each recipient a KEM encapsulation whose shared secret, bound
// by HKDF to the object, user and key, wraps the cek. Version 2 changes the
// labels and adds an ML-DSA-65 signature over a transcript of the whole envelope.

import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { gcmOpen, gcmSeal } from './aead.js';
import { b64, compareBytewise, concat, defaultRandom, equalBytes, fromUtf8, isCanonicalUUID, lenPrefixed, type Random, uint32be, unb64, utf8 } from './bytes.js';
import { type Algorithm, type KeyPair, decapsulate, encapsulate, sizes, validatePublicKey } from './kem.js';
import { type IdentityKeyPair, type SignOptions, signMessage, verifyMessage } from './identity.js';

export const NONCE_SIZE = 12;
export const KEY_SIZE = 32;
/** A wrapped cek: 32 bytes and the 16-byte tag. */
export const WRAPPED_KEY_SIZE = 48;
/** An ML-DSA-65 signature. */
export const SIGNATURE_SIZE = 3309;
/** A leaf of PROTOCOL-V2 §3.2 (SHA-256). */
export const LEAF_SIZE = 32;

/** msg for a message, doc for a document. */
export type Kind = 'msg' | 'doc';

/** What an envelope is bound to (PROTOCOL.md §3). */
export interface Header {
  readonly kind: Kind;
  readonly objectId: string;
  readonly senderId: string;
  readonly conversationId: string;
}

/** Version 2's signed metadata: the header plus what the transcript adds (PROTOCOL-V2 §3.2). */
export interface MetaV2 extends Header {
  /** A message's attached document id, or ''; '' for a document. */
  readonly attachmentId: string;
  /** A document's name as uploaded; '' for a message. */
  readonly name: string;
  /** A document's MIME type as uploaded; '' for a message. */
  readonly mimeType: string;
}

/** One member's current public key, as the API returns it. */
export interface Recipient {
  readonly userId: string;
  readonly keyId: string;
  readonly algorithm: Algorithm;
  readonly publicKey: Uint8Array;
}

/** One recipient's share of an envelope, binary. */
export interface RecipientKey {
  readonly userId: string;
  readonly keyId: string;
  readonly kemCiphertext: Uint8Array;
  readonly wrappedKey: Uint8Array;
}

/** A sealed envelope, binary. */
export interface Envelope {
  readonly ciphertext: Uint8Array;
  readonly nonce: Uint8Array;
  readonly keys: readonly RecipientKey[];
}

/** One recipient's share as the API carries it (RecipientKey / RecipientKeyInput): base64. */
export interface WireRecipientKey {
  readonly userId: string;
  readonly keyId: string;
  readonly kemCiphertext: string;
  readonly wrappedKey: string;
}

/** An envelope as the API carries it (SendMessageInput's fields): base64. */
export interface WireEnvelope {
  readonly ciphertext: string;
  readonly nonce: string;
  readonly keys: readonly WireRecipientKey[];
}

/** A version 2 envelope: the envelope, its signature, and the leaves in signed order. */
export interface SignedEnvelope {
  readonly envelope: Envelope;
  readonly signature: Uint8Array;
  readonly keyDigests: readonly Uint8Array[];
}

/** Intermediate values of a seal, for checking an implementation against the test vectors. */
export type SealTrace =
  | { readonly step: 'content'; readonly cek: Uint8Array; readonly nonce: Uint8Array }
  | {
      readonly step: 'recipient';
      readonly userId: string;
      readonly encapsulationSeed: Uint8Array;
      readonly sharedSecret: Uint8Array;
      readonly hkdfInfo: string;
      readonly kek: Uint8Array;
    };

export interface SealOptions {
  /**
   * Randomness, read in this order (the test vectors depend on it): cek (32),
   * nonce (12), then each recipient's encapsulation seed in input order
   * (32 bytes for ML_KEM_768, 64 for X_WING).
   */
  readonly random?: Random;
  readonly trace?: (t: SealTrace) => void;
}

/** The one error of every failure to open, whatever its cause (PROTOCOL.md §4). */
export class CannotOpenError extends Error {
  constructor() {
    super('cannot open envelope');
    this.name = 'CannotOpenError';
  }
}

type Version = 1 | 2;

function label(v: Version): string {
  return v === 1 ? 'qchat/v1/' : 'qchat/v2/';
}

/** The content aad: qchat/v{1,2}/{kind}|{oid}|{sid}|{cid}. */
export function aad(h: Header, version: Version = 1): Uint8Array {
  return utf8(`${label(version)}${h.kind}|${h.objectId}|${h.senderId}|${h.conversationId}`);
}

/** The HKDF info of a recipient's kek: qchat/v{1,2}/wrap|{oid}|{uid}|{kid}. */
export function hkdfInfo(objectId: string, userId: string, keyId: string, version: Version = 1): string {
  return `${label(version)}wrap|${objectId}|${userId}|${keyId}`;
}

function deriveKEK(sharedSecret: Uint8Array, objectId: string, userId: string, keyId: string, version: Version): Uint8Array {
  return hkdf(sha256, sharedSecret, new Uint8Array(0), utf8(hkdfInfo(objectId, userId, keyId, version)), KEY_SIZE);
}

// Version 1 requires canonical UUIDs, as pqcrypto does: they contain no '|',
// which keeps the aad and the HKDF info unambiguous. Version 2 signs every
// value with its length, so it only needs the separator to be absent.
function checkId(version: Version, what: string, s: string): void {
  if (version === 1 ? !isCanonicalUUID(s) : s === '' || s.includes('|')) {
    throw new Error(version === 1 ? `${what} ${JSON.stringify(s)} is not a lower-case canonical UUID` : `${what} ${JSON.stringify(s)} must be non-empty without '|'`);
  }
}

function checkHeader(h: Header, version: Version): void {
  if (h.kind !== 'msg' && h.kind !== 'doc') throw new Error(`kind must be msg or doc, got ${JSON.stringify(h.kind)}`);
  checkId(version, 'object id', h.objectId);
  checkId(version, 'sender id', h.senderId);
  checkId(version, 'conversation id', h.conversationId);
}

const zeroNonce = new Uint8Array(NONCE_SIZE);

async function sealWith(version: Version, h: Header, plaintext: Uint8Array | string, recipients: readonly Recipient[], opts: SealOptions): Promise<Envelope> {
  checkHeader(h, version);
  if (recipients.length === 0) throw new Error('seal: no recipients');
  // Every recipient is checked before any randomness is drawn.
  const seen = new Map<string, number>();
  recipients.forEach((r, i) => {
    checkId(version, `recipient ${i}: user id`, r.userId);
    checkId(version, `recipient ${i}: key id`, r.keyId);
    const j = seen.get(r.userId);
    if (j !== undefined) throw new Error(`seal: recipient ${i}: user ${r.userId} already is recipient ${j}`);
    seen.set(r.userId, i);
    validatePublicKey(r.algorithm, r.publicKey);
  });
  const random = opts.random ?? defaultRandom;
  const pt = typeof plaintext === 'string' ? utf8(plaintext) : plaintext;
  const cek = random(KEY_SIZE);
  const nonce = random(NONCE_SIZE);
  const ciphertext = await gcmSeal(cek, nonce, pt, aad(h, version));
  opts.trace?.({ step: 'content', cek, nonce });
  const keys: RecipientKey[] = [];
  for (const r of recipients) {
    const seed = random(sizes(r.algorithm).encapsulationSeed);
    const { cipherText, sharedSecret } = encapsulate(r.algorithm, r.publicKey, seed);
    const kek = deriveKEK(sharedSecret, h.objectId, r.userId, r.keyId, version);
    const wrappedKey = await gcmSeal(kek, zeroNonce, cek);
    opts.trace?.({ step: 'recipient', userId: r.userId, encapsulationSeed: seed, sharedSecret, hkdfInfo: hkdfInfo(h.objectId, r.userId, r.keyId, version), kek });
    keys.push({ userId: r.userId, keyId: r.keyId, kemCiphertext: cipherText, wrappedKey });
  }
  return { ciphertext, nonce, keys };
}

async function openWith(version: Version, h: Header, ciphertext: Uint8Array, nonce: Uint8Array, rk: RecipientKey, kp: KeyPair): Promise<Uint8Array> {
  try {
    checkHeader(h, version);
    if (nonce.length !== NONCE_SIZE || rk.wrappedKey.length !== WRAPPED_KEY_SIZE || rk.kemCiphertext.length !== sizes(kp.algorithm).cipherText) {
      throw new Error('sizes');
    }
    // Decapsulation never fails on a well-sized ciphertext (implicit
    // rejection); a forged one is caught by the wrapped key's tag.
    const ss = decapsulate(kp, rk.kemCiphertext);
    const kek = deriveKEK(ss, h.objectId, rk.userId, rk.keyId, version);
    const cek = await gcmOpen(kek, zeroNonce, rk.wrappedKey);
    return await gcmOpen(cek, nonce, ciphertext, aad(h, version));
  } catch {
    throw new CannotOpenError();
  }
}

// ---- version 1 ---------------------------------------------------------------

/**
 * Seals plaintext (bytes, or a string as UTF-8) for every recipient, the
 * sender included if it wants to read it back (pqcrypto.Seal).
 */
export function sealV1(h: Header, plaintext: Uint8Array | string, recipients: readonly Recipient[], opts: SealOptions = {}): Promise<Envelope> {
  return sealWith(1, h, plaintext, recipients, opts);
}

/**
 * Opens a version 1 envelope with one recipient key (the API's myKey) and the
 * key pair it names (pqcrypto.OpenWith). Every failure is CannotOpenError.
 */
export function openV1(h: Header, ciphertext: Uint8Array, nonce: Uint8Array, myKey: RecipientKey, kp: KeyPair): Promise<Uint8Array> {
  return openWith(1, h, ciphertext, nonce, myKey, kp);
}

// ---- version 2 ---------------------------------------------------------------

/** leaf(k) = SHA-256(enc(userId) || enc(keyId) || enc(kemCiphertext) || enc(wrappedKey)) (PROTOCOL-V2 §3.2). */
export function leaf(k: RecipientKey): Uint8Array {
  return sha256(concat(lenPrefixed(k.userId), lenPrefixed(k.keyId), lenPrefixed(k.kemCiphertext), lenPrefixed(k.wrappedKey)));
}

/** The leaves of an envelope's keys in signed order: sorted by userId, bytewise. */
export function sortedLeaves(keys: readonly RecipientKey[]): Uint8Array[] {
  return [...keys].sort((a, b) => compareBytewise(a.userId, b.userId)).map(leaf);
}

/** The signed transcript T of PROTOCOL-V2 §3.2, from the leaves in signed order. */
export function transcript(m: MetaV2, nonce: Uint8Array, ciphertext: Uint8Array, leaves: readonly Uint8Array[]): Uint8Array {
  return concat(
    lenPrefixed('qchat/v2/envelope'),
    lenPrefixed(m.kind),
    lenPrefixed(m.objectId),
    lenPrefixed(m.senderId),
    lenPrefixed(m.conversationId),
    lenPrefixed(m.attachmentId),
    lenPrefixed(m.name),
    lenPrefixed(m.mimeType),
    lenPrefixed(nonce),
    lenPrefixed(sha256(ciphertext)),
    uint32be(leaves.length),
    ...leaves,
  );
}

function checkMeta(m: MetaV2): void {
  if (m.kind === 'msg' && (m.name !== '' || m.mimeType !== '')) throw new Error('a message has no name or MIME type');
  if (m.kind === 'doc' && m.attachmentId !== '') throw new Error('a document has no attachment');
}

/** Signs an envelope's transcript with the sender's identity key (PROTOCOL-V2 §3.3). */
export function signEnvelope(identity: IdentityKeyPair, m: MetaV2, env: Envelope, opts: SignOptions = {}): SignedEnvelope {
  const keyDigests = sortedLeaves(env.keys);
  const signature = signMessage(identity, sha256(transcript(m, env.nonce, env.ciphertext, keyDigests)), opts);
  return { envelope: env, signature, keyDigests };
}

/** Whether signature verifies over the transcript rebuilt from what a reader received. */
export function verifyEnvelope(senderIdentity: Uint8Array, m: MetaV2, ciphertext: Uint8Array, nonce: Uint8Array, keyDigests: readonly Uint8Array[], signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_SIZE || keyDigests.some((d) => d.length !== LEAF_SIZE)) return false;
  return verifyMessage(senderIdentity, sha256(transcript(m, nonce, ciphertext, keyDigests)), signature);
}

/** Seals as version 1 with the version 2 labels, then signs (PROTOCOL-V2 §3.1-3.3). */
export async function sealV2(
  m: MetaV2,
  plaintext: Uint8Array | string,
  recipients: readonly Recipient[],
  identity: IdentityKeyPair,
  opts: SealOptions & SignOptions = {},
): Promise<SignedEnvelope> {
  checkMeta(m);
  const env = await sealWith(2, m, plaintext, recipients, opts);
  return signEnvelope(identity, m, env, opts);
}

/** What a reader of a version 2 envelope receives. */
export interface ReceivedV2 {
  readonly ciphertext: Uint8Array;
  readonly nonce: Uint8Array;
  readonly myKey: RecipientKey;
  readonly keyDigests: readonly Uint8Array[];
  readonly signature: Uint8Array;
}

/**
 * Opens a version 2 envelope (PROTOCOL-V2 §3.5): its own leaf must occur
 * exactly once among keyDigests, the signature must verify against the sender's
 * identity key as pinned (not as the server now presents it), and only then is
 * it decrypted. Every failure is CannotOpenError.
 */
export async function openV2(m: MetaV2, r: ReceivedV2, pinnedSenderIdentity: Uint8Array, kp: KeyPair): Promise<Uint8Array> {
  try {
    checkMeta(m);
    const mine = leaf(r.myKey);
    if (r.keyDigests.filter((d) => equalBytes(d, mine)).length !== 1) throw new Error('own leaf');
    if (!verifyEnvelope(pinnedSenderIdentity, m, r.ciphertext, r.nonce, r.keyDigests, r.signature)) throw new Error('signature');
  } catch {
    throw new CannotOpenError();
  }
  return openWith(2, m, r.ciphertext, r.nonce, r.myKey, kp);
}

// ---- wire form ---------------------------------------------------------------

/** The API form of a recipient key. */
export function toWireKey(k: RecipientKey): WireRecipientKey {
  return { userId: k.userId, keyId: k.keyId, kemCiphertext: b64(k.kemCiphertext), wrappedKey: b64(k.wrappedKey) };
}

/** The API form of an envelope. */
export function toWire(env: Envelope): WireEnvelope {
  return { ciphertext: b64(env.ciphertext), nonce: b64(env.nonce), keys: env.keys.map(toWireKey) };
}

/** A recipient key from the API; throws on base64 that is not canonical. */
export function fromWireKey(k: WireRecipientKey): RecipientKey {
  return { userId: k.userId, keyId: k.keyId, kemCiphertext: unb64(k.kemCiphertext), wrappedKey: unb64(k.wrappedKey) };
}

/** A message's or document's plaintext as a string; CannotOpenError for bytes that are not UTF-8. */
export function textOf(plaintext: Uint8Array): string {
  try {
    return fromUtf8(plaintext);
  } catch {
    throw new CannotOpenError();
  }
}

/**
 * Opens a version 1 message as the API returns it (base64 fields). Every
 * failure, including bad base64 or a missing myKey, is CannotOpenError.
 */
export async function openWireV1(h: Header, ciphertext: string, nonce: string, myKey: WireRecipientKey | null | undefined, kp: KeyPair): Promise<Uint8Array> {
  let ct: Uint8Array, n: Uint8Array, rk: RecipientKey;
  try {
    if (!myKey) throw new Error('no key');
    ct = unb64(ciphertext);
    n = unb64(nonce);
    rk = fromWireKey(myKey);
  } catch {
    throw new CannotOpenError();
  }
  return openV1(h, ct, n, rk, kp);
}
