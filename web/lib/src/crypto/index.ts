// The envelope alone (@qchat/client/crypto): pure functions, no DOM, no
// network, mirroring the Go package pqcrypto.

export * from './bytes.js';
export * from './kem.js';
export * from './identity.js';
export * from './envelope.js';
export * from './safety.js';
export * from './backup.js';
