// Byte helpers shared by the envelope code: strict base64, hex, UTF-8 and the
// length-prefixed encoding of PROTOCOL-V2 §3.2. No Node Buffer: this runs in
// browsers too.

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array<ArrayBuffer> {
  return utf8Encoder.encode(s);
}

/** The string of UTF-8 bytes; throws on malformed UTF-8. */
export function fromUtf8(b: Uint8Array): string {
  return utf8Decoder.decode(b);
}

/** Standard base64 with padding. */
export function b64(bytes: Uint8Array): string {
  let s = '';
  // Chunked so that String.fromCharCode's argument list stays small.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes strict standard base64 with padding: the value must re-encode to
 * itself (no whitespace, no URL alphabet, no stray bits), as the server and
 * pqcrypto require.
 */
export function unb64(s: string): Uint8Array<ArrayBuffer> {
  if (!B64_RE.test(s)) throw new Error('base64: not canonical standard base64');
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (b64(out) !== s) throw new Error('base64: not canonical standard base64');
  return out;
}

/** base64url without padding (the recovery key's text form). */
export function b64url(bytes: Uint8Array): string {
  return b64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Lower-case hex. */
export function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Concatenation of byte strings. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Four bytes, big-endian. */
export function uint32be(n: number): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`uint32: ${n} out of range`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, false);
  return out;
}

/** enc(x) of PROTOCOL-V2 §3.2: uint32_be(len(x)) || x; strings as UTF-8. */
export function lenPrefixed(x: string | Uint8Array): Uint8Array<ArrayBuffer> {
  const b = typeof x === 'string' ? utf8(x) : x;
  return concat(uint32be(b.length), b);
}

/** Constant-time equality of two byte strings of the same length. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return d === 0;
}

/** Bytewise comparison of the UTF-8 encodings, as Go compares strings. */
export function compareBytewise(a: string, b: string): number {
  const x = utf8(a);
  const y = utf8(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether s is a lower-case canonical UUID (8-4-4-4-12 hex digits). */
export function isCanonicalUUID(s: string): boolean {
  return UUID_RE.test(s);
}

/** A source of random bytes: n bytes per call. */
export type Random = (n: number) => Uint8Array;

/** The platform's CSPRNG (WebCrypto getRandomValues). */
export const defaultRandom: Random = (n) => {
  const out = new Uint8Array(n);
  // getRandomValues fills at most 65536 bytes per call.
  for (let i = 0; i < n; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
};

/** A random version-4 UUID in canonical lower-case form. */
export function randomUUID(random: Random = defaultRandom): string {
  const b = random(16);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A time-ordered (version 7, RFC 9562) UUID in canonical lower-case form: the
 * first 48 bits are the Unix time in milliseconds, the other 74 random. The
 * library's message and document ids: the server's indexes take each new id
 * at their end instead of on a random page, which costs it less per message
 * (the Go SDK does the same). Any canonical UUID is accepted by the server.
 */
export function timeOrderedUUID(random: Random = defaultRandom, now: number = Date.now()): string {
  const b = random(16);
  let t = Math.max(0, Math.floor(now));
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x70;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
