// AES-256-GCM with a 16-byte tag. WebCrypto where the page has it (it is
// missing outside secure contexts, e.g. an app opened over plain http on a
// LAN address); @noble/ciphers otherwise, which gives the same bytes.

import { gcm } from '@noble/ciphers/aes.js';

function subtleOrNull(): SubtleCrypto | null {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  return c?.subtle ?? null;
}

// WebCrypto wants ArrayBuffer-backed views.
function own(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b);
}

/** AES-256-GCM encryption: ciphertext || tag. */
export async function gcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
  const subtle = subtleOrNull();
  if (!subtle) return gcmSealPortable(key, nonce, plaintext, aad);
  const k = await subtle.importKey('raw', own(key), 'AES-GCM', false, ['encrypt']);
  const params: AesGcmParams = { name: 'AES-GCM', iv: own(nonce), tagLength: 128 };
  if (aad) params.additionalData = own(aad);
  return new Uint8Array(await subtle.encrypt(params, k, own(plaintext)));
}

/** AES-256-GCM decryption; throws when the tag does not verify. */
export async function gcmOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
  const subtle = subtleOrNull();
  if (!subtle) return gcmOpenPortable(key, nonce, ciphertext, aad);
  const k = await subtle.importKey('raw', own(key), 'AES-GCM', false, ['decrypt']);
  const params: AesGcmParams = { name: 'AES-GCM', iv: own(nonce), tagLength: 128 };
  if (aad) params.additionalData = own(aad);
  return new Uint8Array(await subtle.decrypt(params, k, own(ciphertext)));
}

/** The pure-JS path of gcmSeal (exported for the tests that hold both paths to the same bytes). */
export function gcmSealPortable(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
  return gcm(key, nonce, aad).encrypt(plaintext);
}

/** The pure-JS path of gcmOpen. */
export function gcmOpenPortable(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Uint8Array {
  return gcm(key, nonce, aad).decrypt(ciphertext);
}
