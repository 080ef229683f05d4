// @qchat/client: what an Apollo Client app needs to speak QChat.

export * from './crypto/bytes.js';
export * from './crypto/kem.js';
export * from './crypto/identity.js';
export * from './crypto/envelope.js';
export * from './crypto/safety.js';
export * from './crypto/backup.js';
export * from './api/errors.js';
export * from './api/links.js';
export * from './api/messages.js';
export * from './api/generated/graphql.js';
export * from './storage/keystore.js';
