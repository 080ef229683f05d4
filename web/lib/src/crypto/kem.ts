// KEM key pairs of the envelope (PROTOCOL.md §1): ML-KEM-768 and X-Wing, kept
// as seeds (64 bytes d || z for ML_KEM_768, 32 bytes for X_WING), like pqcrypto.

import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_kem768_x25519 } from '@noble/post-quantum/hybrid.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { hex, type Random, defaultRandom } from './bytes.js';

/** The KEM algorithms, by their API names (KeyAlgorithm in the schema). */
export type Algorithm = 'ML_KEM_768' | 'X_WING';

export const ALGORITHMS: readonly Algorithm[] = ['ML_KEM_768', 'X_WING'];

interface Kem {
  keygen(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(publicKey: Uint8Array, msg?: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

/** Sizes in bytes of one algorithm's values. */
export interface AlgorithmSizes {
  readonly publicKey: number;
  readonly cipherText: number;
  readonly seed: number;
  /** Encapsulation randomness: the order of a deterministic stream depends on it. */
  readonly encapsulationSeed: number;
}

const kems: Record<Algorithm, { kem: Kem; sizes: AlgorithmSizes }> = {
  ML_KEM_768: { kem: ml_kem768, sizes: { publicKey: 1184, cipherText: 1088, seed: 64, encapsulationSeed: 32 } },
  X_WING: { kem: ml_kem768_x25519, sizes: { publicKey: 1216, cipherText: 1120, seed: 32, encapsulationSeed: 64 } },
};

export function isAlgorithm(s: string): s is Algorithm {
  return s === 'ML_KEM_768' || s === 'X_WING';
}

function entry(a: Algorithm): { kem: Kem; sizes: AlgorithmSizes } {
  const e = isAlgorithm(a) ? kems[a] : undefined;
  if (!e) throw new Error(`unknown algorithm ${JSON.stringify(a)}`);
  return e;
}

/** The sizes of an algorithm's keys, ciphertexts and seeds. */
export function sizes(a: Algorithm): AlgorithmSizes {
  return entry(a).sizes;
}

/** A KEM key pair; the secret is the seed, from which the expanded key is derived. */
export interface KeyPair {
  readonly algorithm: Algorithm;
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
}

// Expanding a seed costs about as much as a decapsulation; keep the expanded
// secret keys of the seeds in use (a client has a handful).
const secretKeys = new Map<string, Uint8Array>();

/** The key pair of a seed (deterministic, like pqcrypto.KeyPairFromSeed). */
export function keyPairFromSeed(algorithm: Algorithm, seed: Uint8Array): KeyPair {
  const { kem, sizes: s } = entry(algorithm);
  if (seed.length !== s.seed) throw new Error(`${algorithm} seed must be ${s.seed} bytes, got ${seed.length}`);
  const own = Uint8Array.from(seed);
  const { publicKey, secretKey } = kem.keygen(own);
  secretKeys.set(`${algorithm}:${hex(own)}`, secretKey);
  return { algorithm, publicKey, seed: own };
}

/** A fresh key pair. */
export function generateKeyPair(algorithm: Algorithm = 'ML_KEM_768', random: Random = defaultRandom): KeyPair {
  return keyPairFromSeed(algorithm, random(sizes(algorithm).seed));
}

function secretKeyOf(kp: KeyPair): Uint8Array {
  const k = `${kp.algorithm}:${hex(kp.seed)}`;
  let sk = secretKeys.get(k);
  if (!sk) {
    sk = entry(kp.algorithm).kem.keygen(Uint8Array.from(kp.seed)).secretKey;
    secretKeys.set(k, sk);
  }
  return sk;
}

/** Checks a raw public key's size for its algorithm. */
export function validatePublicKey(algorithm: Algorithm, publicKey: Uint8Array): void {
  const want = sizes(algorithm).publicKey;
  if (publicKey.length !== want) throw new Error(`${algorithm} public key must be ${want} bytes, got ${publicKey.length}`);
}

/** Deterministic encapsulation from the given randomness (its size: sizes(a).encapsulationSeed). */
export function encapsulate(algorithm: Algorithm, publicKey: Uint8Array, seed: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array } {
  return entry(algorithm).kem.encapsulate(publicKey, seed);
}

/** Decapsulation with a key pair's seed. */
export function decapsulate(kp: KeyPair, cipherText: Uint8Array): Uint8Array {
  return entry(kp.algorithm).kem.decapsulate(cipherText, secretKeyOf(kp));
}

/**
 * The fingerprint of a raw public key (PROTOCOL.md §5, and of identity keys in
 * PROTOCOL-V2 §1): the first 16 bytes of SHA-256, lower-case hex, eight groups of four.
 */
export function fingerprint(publicKey: Uint8Array): string {
  const h = hex(sha256(publicKey).subarray(0, 16));
  return (h.match(/.{4}/g) ?? []).join(' ');
}
