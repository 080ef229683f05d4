// The API's errors, read from extensions.code (PROTOCOL.md §10) whichever way
// they reached Apollo: as GraphQL errors of a 200 answer or a websocket, or
// as the JSON body of an HTTP error such as 429.

import { CombinedGraphQLErrors, CombinedProtocolErrors, ServerError } from '@apollo/client/errors';

/** The codes of the contract; the server may add others. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'COMPLEXITY_LIMIT_EXCEEDED'
  | 'INTERNAL_SERVER_ERROR';

/** One error of an answer, with its code. */
export interface ApiError {
  readonly message: string;
  /** extensions.code, or null when the error has none (a network failure, say). */
  readonly code: ErrorCode | (string & {}) | null;
  readonly extensions: Readonly<Record<string, unknown>>;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function fromFormatted(e: { readonly message: string; readonly extensions?: Readonly<Record<string, unknown>> | undefined }): ApiError {
  const extensions = e.extensions ?? {};
  const code = extensions['code'];
  return { message: e.message, code: typeof code === 'string' ? code : null, extensions };
}

/** The API errors inside err; empty when err is not one (a network failure, a bug). */
export function apiErrors(err: unknown): readonly ApiError[] {
  if (CombinedGraphQLErrors.is(err)) return err.errors.map(fromFormatted);
  if (CombinedProtocolErrors.is(err)) return err.errors.map(fromFormatted);
  if (ServerError.is(err)) {
    try {
      const body: unknown = JSON.parse(err.bodyText);
      if (isRecord(body) && Array.isArray(body['errors'])) {
        return body['errors'].filter(isRecord).map((e) => fromFormatted({ message: String(e['message'] ?? ''), extensions: isRecord(e['extensions']) ? e['extensions'] : {} }));
      }
    } catch {
      // Not a GraphQL body: a proxy's page, say.
    }
  }
  return [];
}

/** The first error's code, or null. */
export function errorCode(err: unknown): string | null {
  return apiErrors(err)[0]?.code ?? null;
}

/** Whether err carries an error with the given code. */
export function hasErrorCode(err: unknown, code: ErrorCode): boolean {
  return apiErrors(err).some((e) => e.code === code);
}

/** Seconds to wait before trying again, from a RATE_LIMITED error; null otherwise. */
export function retryAfterSeconds(err: unknown): number | null {
  for (const e of apiErrors(err)) {
    const s = e.extensions['retryAfter'];
    if (e.code === 'RATE_LIMITED' && typeof s === 'number' && Number.isFinite(s)) return s;
  }
  return null;
}

/** What sendMessage and uploadDocument report when an envelope's recipients are not the conversation's members with their current keys. */
export interface RecipientMismatch {
  readonly staleKeyIds: readonly string[];
  readonly missingUserIds: readonly string[];
  readonly unexpectedUserIds: readonly string[];
}

function strings(x: unknown): string[] {
  return Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : [];
}

/**
 * The recipient mismatch in err (BAD_USER_INPUT with staleKeyIds,
 * missingUserIds or unexpectedUserIds), or null: the one error after which
 * fetching the keys again and sealing again can succeed.
 */
export function recipientMismatch(err: unknown): RecipientMismatch | null {
  for (const e of apiErrors(err)) {
    if (e.code !== 'BAD_USER_INPUT') continue;
    const m = { staleKeyIds: strings(e.extensions['staleKeyIds']), missingUserIds: strings(e.extensions['missingUserIds']), unexpectedUserIds: strings(e.extensions['unexpectedUserIds']) };
    if (m.staleKeyIds.length + m.missingUserIds.length + m.unexpectedUserIds.length > 0) return m;
  }
  return null;
}
