// The TypeScript half of web/web_test.go's interop check with pqcrypto (Go),
// on fresh random keys and envelopes rather than the fixed vectors:
//
//   node build/test/interop.js seal        prints a JSON case sealed here, for Go to open
//   node build/test/interop.js open FILE   opens FILE's case (sealed by Go), prints the plaintexts

import { readFileSync } from 'node:fs';
import { type Algorithm, type Header, b64, fromWireKey, generateKeyPair, isAlgorithm, keyPairFromSeed, openV1, randomUUID, sealV1, textOf, toWire, unb64, type WireEnvelope } from '../src/index.js';

interface Case {
  header: Header;
  plaintext: string;
  recipients: { userId: string; keyId: string; algorithm: Algorithm; seed: string }[];
  envelope: WireEnvelope;
}

async function seal(): Promise<Case> {
  const header: Header = { kind: 'msg', objectId: randomUUID(), senderId: randomUUID(), conversationId: randomUUID() };
  const users = (['ML_KEM_768', 'X_WING'] as const).map((a) => ({ userId: randomUUID(), keyId: randomUUID(), kp: generateKeyPair(a) }));
  const plaintext = `sealed in TypeScript ✓ ${randomUUID()}`;
  const env = await sealV1(header, plaintext, users.map((u) => ({ userId: u.userId, keyId: u.keyId, algorithm: u.kp.algorithm, publicKey: u.kp.publicKey })));
  return { header, plaintext, recipients: users.map((u) => ({ userId: u.userId, keyId: u.keyId, algorithm: u.kp.algorithm, seed: b64(u.kp.seed) })), envelope: toWire(env) };
}

async function open(c: Case): Promise<string[]> {
  const out: string[] = [];
  for (const r of c.recipients) {
    if (!isAlgorithm(r.algorithm)) throw new Error(`algorithm ${r.algorithm}`);
    const k = c.envelope.keys.find((x) => x.userId === r.userId);
    if (!k) throw new Error(`no key for ${r.userId}`);
    out.push(textOf(await openV1(c.header, unb64(c.envelope.ciphertext), unb64(c.envelope.nonce), fromWireKey(k), keyPairFromSeed(r.algorithm, unb64(r.seed)))));
  }
  return out;
}

const [cmd, file] = process.argv.slice(2);
if (cmd === 'seal') {
  console.log(JSON.stringify(await seal()));
} else if (cmd === 'open' && file) {
  console.log(JSON.stringify(await open(JSON.parse(readFileSync(file, 'utf8')) as Case)));
} else {
  console.error('usage: interop.js seal | open FILE');
  process.exit(2);
}
