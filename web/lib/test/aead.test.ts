// WebCrypto and the pure-JS fallback (used outside secure contexts) give the
// same AES-256-GCM bytes and refuse the same tampering.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gcmOpen, gcmOpenPortable, gcmSeal, gcmSealPortable } from '../src/crypto/aead.js';
import { defaultRandom } from '../src/index.js';
import { flip } from './helpers.js';

test('AES-256-GCM: WebCrypto and the fallback agree', async () => {
  assert.ok(globalThis.crypto?.subtle, 'Node 20 has WebCrypto');
  for (const n of [0, 1, 16, 1000]) {
    const key = defaultRandom(32);
    const nonce = defaultRandom(12);
    const pt = defaultRandom(n);
    const aad = defaultRandom(5);
    const a = await gcmSeal(key, nonce, pt, aad);
    assert.deepEqual(gcmSealPortable(key, nonce, pt, aad), a);
    assert.deepEqual(gcmOpenPortable(key, nonce, a, aad), pt);
    assert.deepEqual(await gcmOpen(key, nonce, a, aad), pt);
    await assert.rejects(gcmOpen(key, nonce, flip(a), aad));
    assert.throws(() => gcmOpenPortable(key, nonce, flip(a), aad));
    assert.throws(() => gcmOpenPortable(key, nonce, a, flip(aad)));
  }
});
