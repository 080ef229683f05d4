// Test helpers: the repository's test vectors (read at test time, so this
// library and pqcrypto cannot drift apart), and deterministic randomness.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Random } from '../src/index.js';

/** The repository root: the nearest directory above this file with go.mod. */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'go.mod'))) {
    const up = dirname(d);
    if (up === d) throw new Error('go.mod not found above ' + fileURLToPath(import.meta.url));
    d = up;
  }
  return d;
}

/** A JSON file of pqcrypto/testdata. */
export function testdata(name: string): unknown {
  return JSON.parse(readFileSync(join(repoRoot(), 'pqcrypto', 'testdata', name), 'utf8'));
}

/** The v1 vector's randomness: SHA-256(UTF-8(label) || uint32be(counter)), counter 0, 1, 2, ... */
export function ctrStream(label: string): Random {
  const lb = new TextEncoder().encode(label);
  let ctr = 0;
  let buf = new Uint8Array(0);
  return (n) => {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      if (buf.length === 0) {
        const block = new Uint8Array(lb.length + 4);
        block.set(lb);
        new DataView(block.buffer).setUint32(lb.length, ctr++, false);
        buf = sha256(block);
      }
      const c = Math.min(buf.length, n - off);
      out.set(buf.subarray(0, c), off);
      buf = buf.subarray(c);
      off += c;
    }
    return out;
  };
}

/** Randomness that hands out the given values in order, each exactly once at its size. */
export function queue(...values: Uint8Array[]): Random {
  const q = [...values];
  return (n) => {
    const v = q.shift();
    if (!v || v.length !== n) throw new Error(`queued randomness: asked for ${n} bytes, have ${v?.length ?? 'none'}`);
    return v;
  };
}

/** Flips one bit of a copy. */
export function flip(b: Uint8Array, i = 0): Uint8Array {
  const c = Uint8Array.from(b);
  c[i] = (c[i] ?? 0) ^ 1;
  return c;
}
