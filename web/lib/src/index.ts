// @qchat/client: what an Apollo Client app needs to speak QChat. The
// envelope alone is also @qchat/client/crypto.

export * from './crypto/index.js';
export * from './api/errors.js';
export * from './api/links.js';
export * from './api/messages.js';
export * from './api/pages.js';
export * from './api/generated/graphql.js';
export * from './storage/keystore.js';
export * from './api/trust.js';
export * from './api/account.js';
export * from './api/documents.js';
