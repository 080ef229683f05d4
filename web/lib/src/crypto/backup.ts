// Key backup (PROTOCOL-V2 §6): the secret keys sealed with a backup secret the
// server never sees (a passphrase, or a generated recovery key), Argon2id and
// AES-256-GCM bound to the owner's user id.

import { argon2idAsync } from '@noble/hashes/argon2.js';
import { gcmOpen, gcmSeal } from './aead.js';
import { b64, b64url, defaultRandom, fromUtf8, type Random, unb64, utf8 } from './bytes.js';
import { IDENTITY_SEED_SIZE } from './identity.js';
import { type Algorithm, isAlgorithm, sizes } from './kem.js';

export const MIN_PASSPHRASE_LENGTH = 12;
/** The largest sealed backup the server stores. */
export const MAX_SEALED_BACKUP = 64 * 1024;

/** Argon2id's parameters: iterations, memory in KiB, parallelism. */
export interface KdfParams {
  readonly t: number;
  readonly m: number;
  readonly p: number;
}

/** The lowest parameters a reader accepts, and the default. */
export const DEFAULT_KDF: KdfParams = { t: 2, m: 19456, p: 1 };
const BOUNDS = { t: [2, 10], m: [19456, 262144], p: [1, 4] } as const;

/** A KEM key worth keeping: current or past, to read old messages with. */
export interface BackupKemKey {
  readonly keyId: string;
  readonly algorithm: Algorithm;
  readonly seed: Uint8Array;
}

/** What a backup holds. */
export interface BackupContents {
  readonly identitySeed: Uint8Array;
  readonly kemKeys: readonly BackupKemKey[];
}

/** The one error of every failure to open a backup. */
export class CannotOpenBackupError extends Error {
  constructor() {
    super('cannot open key backup');
    this.name = 'CannotOpenBackupError';
  }
}

/** A recovery key: 32 random bytes as 43 base64url characters; the text itself is the secret. */
export function generateRecoveryKey(random: Random = defaultRandom): string {
  return b64url(random(32));
}

/** Whether secret is long enough: at least 12 code points after NFC (a recovery key is 43). */
export function isStrongEnoughSecret(secret: string): boolean {
  return [...secret.normalize('NFC')].length >= MIN_PASSPHRASE_LENGTH;
}

function checkParams(k: KdfParams): boolean {
  return (['t', 'm', 'p'] as const).every((f) => {
    const v = k[f];
    return typeof v === 'number' && Number.isInteger(v) && v >= BOUNDS[f][0] && v <= BOUNDS[f][1];
  });
}

/** Argon2id(UTF-8(NFC(secret)), salt, t, m, p) → 32 bytes (RFC 9106, version 0x13). */
export function deriveBackupKey(secret: string, salt: Uint8Array, params: KdfParams): Promise<Uint8Array> {
  return argon2idAsync(utf8(secret.normalize('NFC')), salt, { t: params.t, m: params.m, p: params.p, dkLen: 32, version: 0x13 });
}

function backupAad(uid: string): Uint8Array {
  return utf8(`qchat/v2/backup|${uid}`);
}

/** The plaintext JSON, with the field order of the specification. */
export function backupPlaintext(c: BackupContents): string {
  return JSON.stringify({
    identitySeed: b64(c.identitySeed),
    kemKeys: c.kemKeys.map((k) => ({ keyId: k.keyId, algorithm: k.algorithm, seed: b64(k.seed) })),
  });
}

export interface SealBackupOptions {
  readonly params?: KdfParams;
  /** Randomness: salt (16 bytes), then nonce (12). */
  readonly random?: Random;
}

/** A backup secret's Argon2id key with what it was derived from: enough to seal again without the secret. */
export interface BackupKey {
  readonly key: Uint8Array;
  readonly salt: Uint8Array;
  readonly params: KdfParams;
}

/** Derives a fresh backup key from secret (a random salt); checks the secret's length and the parameters. */
export async function newBackupKey(secret: string, opts: SealBackupOptions = {}): Promise<BackupKey> {
  const params = opts.params ?? DEFAULT_KDF;
  if (!checkParams(params)) throw new Error('backup: Argon2id parameters out of bounds (t 2-10, m 19456-262144 KiB, p 1-4)');
  if (!isStrongEnoughSecret(secret)) throw new Error(`backup: the secret must be at least ${MIN_PASSPHRASE_LENGTH} characters`);
  const salt = (opts.random ?? defaultRandom)(16);
  return { key: await deriveBackupKey(secret, salt, params), salt, params };
}

/**
 * Seals contents for user uid under a derived backup key with a fresh nonce
 * (a rotation's new backup reuses the key and salt: the secret is the same).
 */
export async function sealBackupWithKey(uid: string, bk: BackupKey, contents: BackupContents, random: Random = defaultRandom): Promise<string> {
  if (!checkParams(bk.params) || bk.salt.length !== 16 || bk.key.length !== 32) throw new Error('backup: not a backup key');
  checkContents(contents);
  const nonce = random(12);
  const ct = await gcmSeal(bk.key, nonce, utf8(backupPlaintext(contents)), backupAad(uid));
  const { t, m, p } = bk.params;
  const sealed = JSON.stringify({ v: 2, kdf: 'argon2id', t, m, p, salt: b64(bk.salt), nonce: b64(nonce), ciphertext: b64(ct) });
  if (sealed.length > MAX_SEALED_BACKUP) throw new Error('backup: too many keys for one backup (64 KiB)');
  return sealed;
}

/** Seals a backup for user uid with secret; returns the JSON the server stores. */
export async function sealBackup(uid: string, secret: string, contents: BackupContents, opts: SealBackupOptions = {}): Promise<string> {
  checkContents(contents);
  const bk = await newBackupKey(secret, opts);
  return sealBackupWithKey(uid, bk, contents, opts.random ?? defaultRandom);
}

function checkContents(c: BackupContents): void {
  if (c.identitySeed.length !== IDENTITY_SEED_SIZE) throw new Error(`backup: identity seed must be ${IDENTITY_SEED_SIZE} bytes`);
  for (const k of c.kemKeys) {
    if (!isAlgorithm(k.algorithm)) throw new Error(`backup: key ${k.keyId}: unknown algorithm`);
    if (k.seed.length !== sizes(k.algorithm).seed) throw new Error(`backup: key ${k.keyId}: ${k.algorithm} seed must be ${sizes(k.algorithm).seed} bytes`);
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function str(o: Record<string, unknown>, f: string): string {
  const v = o[f];
  if (typeof v !== 'string') throw new Error(f);
  return v;
}

/** The parameters of a sealed backup, checked against the accepted bounds; null when it is not one. */
export function backupParams(sealed: string): KdfParams | null {
  try {
    const o: unknown = JSON.parse(sealed);
    if (!isRecord(o)) return null;
    const k = { t: o['t'], m: o['m'], p: o['p'] };
    if (typeof k.t !== 'number' || typeof k.m !== 'number' || typeof k.p !== 'number') return null;
    const params = { t: k.t, m: k.m, p: k.p };
    return checkParams(params) ? params : null;
  } catch {
    return null;
  }
}

/**
 * Opens a sealed backup of user uid with secret. Anything wrong, a wrong
 * secret included, is CannotOpenBackupError; the shape and the bounds are
 * checked before the KDF runs, so a server cannot make it spend unbounded
 * memory or time.
 */
export async function openBackup(uid: string, secret: string, sealed: string): Promise<BackupContents> {
  return (await openBackupWithKey(uid, secret, sealed)).contents;
}

/** openBackup, also giving the derived key (to seal the next backup with the same secret). */
export async function openBackupWithKey(uid: string, secret: string, sealed: string): Promise<{ contents: BackupContents; key: BackupKey }> {
  let key: Uint8Array, nonce: Uint8Array, ct: Uint8Array, salt: Uint8Array, params: KdfParams | null;
  try {
    if (sealed.length > MAX_SEALED_BACKUP) throw new Error('size');
    const o: unknown = JSON.parse(sealed);
    if (!isRecord(o) || o['v'] !== 2 || o['kdf'] !== 'argon2id') throw new Error('shape');
    params = backupParams(sealed);
    if (!params) throw new Error('params');
    salt = unb64(str(o, 'salt'));
    nonce = unb64(str(o, 'nonce'));
    ct = unb64(str(o, 'ciphertext'));
    if (salt.length !== 16 || nonce.length !== 12) throw new Error('sizes');
    key = await deriveBackupKey(secret, salt, params);
  } catch {
    throw new CannotOpenBackupError();
  }
  try {
    const pt: unknown = JSON.parse(fromUtf8(await gcmOpen(key, nonce, ct, backupAad(uid))));
    if (!isRecord(pt) || !Array.isArray(pt['kemKeys'])) throw new Error('shape');
    const kemKeys = pt['kemKeys'].map((k: unknown): BackupKemKey => {
      if (!isRecord(k)) throw new Error('key');
      const algorithm = str(k, 'algorithm');
      if (!isAlgorithm(algorithm)) throw new Error('algorithm');
      return { keyId: str(k, 'keyId'), algorithm, seed: unb64(str(k, 'seed')) };
    });
    const contents = { identitySeed: unb64(str(pt, 'identitySeed')), kemKeys };
    checkContents(contents);
    return { contents, key: { key, salt, params } };
  } catch {
    throw new CannotOpenBackupError();
  }
}
