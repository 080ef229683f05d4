// Safety numbers (PROTOCOL-V2 §5): 60 digits that two users compare to catch
// a server handing out wrong identity keys.

import { sha512 } from '@noble/hashes/sha2.js';
import { compareBytewise, concat, utf8 } from './bytes.js';

const ROUNDS = 5200;

/** The 30 digits of one user: digits(uid, ik). */
export function safetyDigits(uid: string, identityKey: Uint8Array): string {
  let h = sha512(concat(utf8('qchat/v2/safety'), Uint8Array.of(0), utf8(uid), Uint8Array.of(0), identityKey));
  for (let i = 0; i < ROUNDS; i++) h = sha512(concat(h, identityKey));
  let out = '';
  for (let c = 0; c < 6; c++) {
    // A 40-bit big-endian integer is exact in a double.
    let v = 0;
    for (let i = 0; i < 5; i++) v = v * 256 + (h[c * 5 + i] ?? 0);
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

/** A user of a safety number. */
export interface SafetyParty {
  readonly userId: string;
  readonly identityKey: Uint8Array;
}

/** The 60-digit safety number of two users: the digits of the uid that sorts first (bytewise), then the other's. */
export function safetyNumber(a: SafetyParty, b: SafetyParty): string {
  const [first, second] = compareBytewise(a.userId, b.userId) <= 0 ? [a, b] : [b, a];
  return safetyDigits(first.userId, first.identityKey) + safetyDigits(second.userId, second.identityKey);
}

/** Twelve groups of five digits, for display. */
export function formatSafetyNumber(digits: string): string[] {
  return digits.match(/.{1,5}/g) ?? [];
}
