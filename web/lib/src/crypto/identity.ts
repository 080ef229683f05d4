// Identity keys and KEM key certificates (PROTOCOL-V2 §1-2): ML-DSA-65, pure,
// with the context string qchat/v2 on every signature; the secret is the
// 32-byte seed of FIPS 204's key generation.

import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { concat, defaultRandom, type Random, utf8 } from './bytes.js';
import { type Algorithm, validatePublicKey } from './kem.js';

export const IDENTITY_SEED_SIZE = 32;
export const IDENTITY_PUBLIC_KEY_SIZE = 1952;
export const MAX_SEQ = 2147483647;

const context = utf8('qchat/v2');

/** An identity key pair; the secret is the seed. */
export interface IdentityKeyPair {
  readonly publicKey: Uint8Array;
  readonly seed: Uint8Array;
}

export interface SignOptions {
  /**
   * Deterministic signing (FIPS 204 with rnd = 32 zero bytes), as the test
   * vectors use. The default is hedged; a verifier cannot tell the difference.
   */
  readonly deterministic?: boolean;
}

const expanded = new WeakMap<IdentityKeyPair, Uint8Array>();

/** The identity key pair of a seed (circl mldsa65.NewKeyFromSeed). */
export function identityFromSeed(seed: Uint8Array): IdentityKeyPair {
  if (seed.length !== IDENTITY_SEED_SIZE) throw new Error(`identity seed must be ${IDENTITY_SEED_SIZE} bytes, got ${seed.length}`);
  const own = Uint8Array.from(seed);
  const { publicKey, secretKey } = ml_dsa65.keygen(own);
  const kp: IdentityKeyPair = { publicKey, seed: own };
  expanded.set(kp, secretKey);
  return kp;
}

/** A fresh identity key pair. */
export function generateIdentity(random: Random = defaultRandom): IdentityKeyPair {
  return identityFromSeed(random(IDENTITY_SEED_SIZE));
}

function secretKeyOf(kp: IdentityKeyPair): Uint8Array {
  let sk = expanded.get(kp);
  if (!sk) {
    sk = ml_dsa65.keygen(Uint8Array.from(kp.seed)).secretKey;
    expanded.set(kp, sk);
  }
  return sk;
}

/** ML-DSA-65 over message itself, with the QChat context. */
export function signMessage(kp: IdentityKeyPair, message: Uint8Array, opts: SignOptions = {}): Uint8Array {
  return ml_dsa65.sign(message, secretKeyOf(kp), opts.deterministic ? { context, extraEntropy: false } : { context });
}

/** Whether signature is publicKey's over message with the QChat context; false on malformed input. */
export function verifyMessage(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== IDENTITY_PUBLIC_KEY_SIZE) return false;
  try {
    return ml_dsa65.verify(signature, message, publicKey, { context });
  } catch {
    return false;
  }
}

function checkSeq(seq: number): void {
  if (!Number.isInteger(seq) || seq < 1 || seq > MAX_SEQ) throw new Error(`seq must be an integer in 1..${MAX_SEQ}, got ${seq}`);
}

/** C = UTF-8("qchat/v2/kem-key|" || alg || "|" || seq || "|") || pk (PROTOCOL-V2 §2). */
export function certificateMessage(algorithm: Algorithm, seq: number, publicKey: Uint8Array): Uint8Array {
  checkSeq(seq);
  return concat(utf8(`qchat/v2/kem-key|${algorithm}|${seq}|`), publicKey);
}

/** The certificate of a KEM public key: the identity key's signature over C. */
export function certifyKemKey(identity: IdentityKeyPair, algorithm: Algorithm, seq: number, publicKey: Uint8Array, opts: SignOptions = {}): Uint8Array {
  validatePublicKey(algorithm, publicKey);
  return signMessage(identity, certificateMessage(algorithm, seq, publicKey), opts);
}

/** Whether signature certifies publicKey with seq under identityPublicKey. */
export function verifyKemCertificate(identityPublicKey: Uint8Array, algorithm: Algorithm, seq: number, publicKey: Uint8Array, signature: Uint8Array): boolean {
  try {
    validatePublicKey(algorithm, publicKey);
    return verifyMessage(identityPublicKey, certificateMessage(algorithm, seq, publicKey), signature);
  } catch {
    return false;
  }
}
