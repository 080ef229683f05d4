// The account's keys as a person sees them: restoring them on a new browser,
// the settings (rotating the key, the key backup), a contact's safety number,
// and the warning when a contact's identity key changes.

import { useApolloClient, useQuery } from '@apollo/client/react';
import {
  KeyBackupDocument, MeDocument, type Pin, UserByUsernameDocument, type UserFieldsFragment, createKeyBackup, deleteKeyBackup,
  formatSafetyNumber, generateRecoveryKey, isStrongEnoughSecret, restoreKeyBackup, rotateAccountKey, safetyNumber, setAccountIdentity, unb64,
} from '@qchat/client';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import { focusMainHeading } from '../focus';
import { Link } from '../router';
import type { Session } from '../session';
import { useTrust } from '../trust';
import { useAction } from '../useAction';

type OnKeys = () => Promise<void>;

/**
 * A browser signed in without the account's keys (a new device): restore them
 * from the backup, or start over with new keys. An account from before
 * signed messages gets its identity key here, without asking.
 */
export function RestoreKeys({ session, me, onKeys }: { session: Session; me: UserFieldsFragment; onKeys: OnKeys }) {
  const client = useApolloClient();
  const backup = useQuery(KeyBackupDocument, { fetchPolicy: 'network-only' });
  const [secret, setSecret] = useState('');
  const [password, setPassword] = useState('');
  const restore = useAction();
  const reset = useAction();
  const legacy = useAction();
  // Each attempt runs once (StrictMode runs effects twice).
  const [attempt, setAttempt] = useState(0);
  const started = useRef(-1);
  const needsIdentity = me.identityKey === null;

  const runLegacy = legacy.run;
  useEffect(() => {
    if (!needsIdentity || started.current === attempt) return;
    started.current = attempt;
    void runLegacy(async () => {
      await setAccountIdentity(client, session.store);
      await onKeys();
    });
  }, [needsIdentity, attempt, client, session.store, onKeys, runLegacy]);

  if (needsIdentity) {
    return (
      <section className="card" aria-labelledby="identity-title">
        <h2 id="identity-title">Setting up signed messages</h2>
        <p role="status">{legacy.busy ? 'Making your identity key…' : legacy.error ? '' : 'Done.'}</p>
        {legacy.error && (
          <>
            <p className="error" role="alert">{legacy.error}</p>
            <button type="button" onClick={() => setAttempt((n) => n + 1)}>Try again</button>
          </>
        )}
      </section>
    );
  }

  const hasBackup = typeof backup.data?.keyBackup === 'string';
  const doRestore = (e: FormEvent) => {
    e.preventDefault();
    void restore.run(async () => {
      await restoreKeyBackup(client, session.store, session.userId, secret.trim());
      setSecret('');
      await onKeys();
    });
  };
  const doReset = (e: FormEvent) => {
    e.preventDefault();
    void reset.run(async () => {
      await setAccountIdentity(client, session.store, { password });
      setPassword('');
      await client.refetchQueries({ include: [MeDocument] });
      await onKeys();
    });
  };
  return (
    <section className="restore" aria-labelledby="restore-title">
      <h2 id="restore-title">Restore your keys</h2>
      <p>This browser does not have your keys yet, so it cannot open your messages or send new ones.</p>
      {backup.loading && <p role="status">Looking for your key backup…</p>}
      {hasBackup && (
        <form className="card" onSubmit={doRestore} aria-labelledby="restore-backup-title">
          <h3 id="restore-backup-title">From your key backup</h3>
          <label>
            Recovery key or passphrase
            <input type="password" autoComplete="off" spellCheck={false} required value={secret} onChange={(e) => setSecret(e.target.value)} />
          </label>
          <p className="hint">Your whole history becomes readable here, from before and after any key change.</p>
          {restore.error && <p className="error" role="alert">{restore.error}</p>}
          <button type="submit" disabled={restore.busy}>{restore.busy ? 'Restoring…' : 'Restore keys'}</button>
        </form>
      )}
      {backup.data && !hasBackup && <p>You have no key backup, so your keys cannot be restored on this browser.</p>}
      <form className="card" onSubmit={doReset} aria-labelledby="start-over-title">
        <h3 id="start-over-title">Start over with new keys</h3>
        <p className="hint">
          For when there is no backup or its secret is lost. Messages sent to your old keys cannot be read here, and your contacts will be warned that your identity key changed.
        </p>
        <label>
          Your account password
          <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {reset.error && <p className="error" role="alert">{reset.error}</p>}
        <button type="submit" className="secondary" disabled={reset.busy}>{reset.busy ? 'Making new keys…' : 'Make new keys'}</button>
      </form>
    </section>
  );
}

/** Settings: the account's keys and its key backup. */
export function Settings({ session, onKeys }: { session: Session; onKeys: OnKeys }) {
  const client = useApolloClient();
  const me = useQuery(MeDocument);
  const user = me.data?.me;
  const rotate = useAction();
  const [rotated, setRotated] = useState<string | null>(null);
  const doRotate = () =>
    void rotate.run(async () => {
      setRotated(null);
      const u = await rotateAccountKey(client, session.store);
      const resealed = (await session.store.getBackupKey(session.userId)) !== null;
      await onKeys();
      setRotated(`New encryption key made (number ${u.publicKey?.seq ?? '?'}).${resealed ? ' Your key backup was updated with it.' : ''}`);
    });
  return (
    <section className="settings" aria-labelledby="settings-title">
      <h2 id="settings-title">Settings</h2>
      <section className="card" aria-labelledby="keys-title">
        <h3 id="keys-title">Your keys</h3>
        {user && (
          <dl>
            <dt>Identity key fingerprint</dt>
            <dd><code>{user.identityKey?.fingerprint ?? 'none yet'}</code></dd>
            <dt>Encryption key</dt>
            <dd>
              {user.publicKey ? (
                <>
                  {user.publicKey.algorithm === 'X_WING' ? 'X-Wing' : 'ML-KEM-768'}, number {user.publicKey.seq ?? '?'}, fingerprint <code>{user.publicKey.fingerprint}</code>
                </>
              ) : 'none'}
            </dd>
          </dl>
        )}
        <p className="hint">Rotating makes a new encryption key for new messages; this browser keeps the old ones to read your history.</p>
        <button type="button" onClick={doRotate} disabled={rotate.busy}>{rotate.busy ? 'Rotating…' : 'Rotate my encryption key'}</button>
        <p role="status" className="hint">{rotated}</p>
        {rotate.error && <p className="error" role="alert">{rotate.error}</p>}
      </section>
      <BackupSettings session={session} />
    </section>
  );
}

function BackupSettings({ session }: { session: Session }) {
  const client = useApolloClient();
  const backup = useQuery(KeyBackupDocument, { fetchPolicy: 'network-only' });
  const [kind, setKind] = useState<'recovery' | 'passphrase'>('recovery');
  const [passphrase, setPassphrase] = useState('');
  const [repeat, setRepeat] = useState('');
  const [recoveryKey, setRecoveryKey] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [copied, setCopied] = useState<string | null>(null);
  const save = useAction();
  const remove = useAction();
  const has = typeof backup.data?.keyBackup === 'string';

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setStatus(null);
    setRecoveryKey(null);
    if (kind === 'passphrase') {
      if (!isStrongEnoughSecret(passphrase)) {
        save.setError('The passphrase must be at least 12 characters long.');
        return;
      }
      if (passphrase !== repeat) {
        save.setError('The two passphrases differ.');
        return;
      }
    }
    void save.run(async () => {
      const secret = kind === 'recovery' ? generateRecoveryKey() : passphrase;
      await createKeyBackup(client, session.store, session.userId, secret);
      await backup.refetch();
      setPassphrase('');
      setRepeat('');
      if (kind === 'recovery') setRecoveryKey(secret);
      setStatus(has ? 'Key backup replaced.' : 'Key backup saved.');
    });
  };
  const doDelete = () =>
    void remove.run(async () => {
      await deleteKeyBackup(client, session.store, session.userId);
      setConfirmDelete(false);
      setRecoveryKey(null);
      await backup.refetch();
      setStatus('Key backup deleted.');
    });
  const copy = async () => {
    if (!recoveryKey) return;
    try {
      await navigator.clipboard.writeText(recoveryKey);
      setCopied('Copied.');
    } catch {
      setCopied('Copying is not allowed here: select the key and copy it.');
    }
  };

  return (
    <section className="card" aria-labelledby="backup-title">
      <h3 id="backup-title">Key backup</h3>
      <p>
        {backup.loading
          ? 'Looking for your key backup…'
          : has
            ? 'You have a key backup: a new browser can restore your keys and read your whole history.'
            : 'You have no key backup yet: without one, a new browser cannot read your history.'}
      </p>
      <p className="hint">It is encrypted in this browser with a secret the server never sees, and updated by itself when you rotate your key here.</p>
      <form onSubmit={submit}>
        <fieldset>
          <legend>Protect the backup with</legend>
          <label className="choice">
            <input type="radio" name="backup-kind" checked={kind === 'recovery'} onChange={() => setKind('recovery')} /> A recovery key made for me (recommended)
          </label>
          <label className="choice">
            <input type="radio" name="backup-kind" checked={kind === 'passphrase'} onChange={() => setKind('passphrase')} /> A passphrase of my own
          </label>
        </fieldset>
        {kind === 'passphrase' && (
          <>
            <label>
              Passphrase
              <input type="password" autoComplete="new-password" required aria-describedby="passphrase-hint" value={passphrase} onChange={(e) => setPassphrase(e.target.value)} />
            </label>
            <p id="passphrase-hint" className="hint">At least 12 characters. Not your account password.</p>
            <label>
              Repeat passphrase
              <input type="password" autoComplete="new-password" required value={repeat} onChange={(e) => setRepeat(e.target.value)} />
            </label>
          </>
        )}
        {save.error && <p className="error" role="alert">{save.error}</p>}
        <button type="submit" disabled={save.busy}>{save.busy ? 'Saving…' : has ? 'Replace backup' : 'Create backup'}</button>
      </form>
      <p role="status" className="hint">{status}</p>
      {recoveryKey && (
        <div className="recovery" aria-labelledby="recovery-title">
          <p id="recovery-title"><strong>Your recovery key</strong>: write it down or keep it in a password manager. It is shown only now, and it is the only way to open this backup.</p>
          <code aria-label="Recovery key">{recoveryKey}</code>{' '}
          <button type="button" onClick={() => void copy()}>Copy recovery key</button>
          <span role="status" className="hint">{copied}</span>
        </div>
      )}
      {has &&
        (confirmDelete ? (
          <div className="confirm" role="group" aria-label="Delete the key backup?">
            <span>Delete the key backup? A new browser will not be able to read your history.</span>
            <button type="button" onClick={doDelete} disabled={remove.busy}>Yes, delete the backup</button>
            <button type="button" className="secondary" onClick={() => setConfirmDelete(false)}>Keep it</button>
          </div>
        ) : (
          <p>
            <button type="button" className="secondary" onClick={() => setConfirmDelete(true)}>Delete backup</button>
          </p>
        ))}
      {remove.error && <p className="error" role="alert">{remove.error}</p>}
    </section>
  );
}

/** A contact's safety number (twelve groups of five digits) and marking it verified. */
export function SafetyNumber({ username, session }: { username: string; session: Session }) {
  const trust = useTrust();
  const { data, error } = useQuery(UserByUsernameDocument, { variables: { username }, fetchPolicy: 'network-only' });
  const user = data?.userByUsername;
  const [pin, setPin] = useState<Pin | null | undefined>(undefined);
  const action = useAction();
  const changed = user ? trust.changed.get(user.id) : undefined;

  // The key the server presents now is compared with the pin (pinned on
  // first use; a change shows the warning) before the pin is shown.
  const { check } = trust;
  const userId = user?.id;
  useEffect(() => {
    if (!userId) return;
    let live = true;
    void (async () => {
      await check(userId);
      const p = await session.store.getPin(session.userId, userId);
      if (live) setPin(p);
    })();
    return () => {
      live = false;
    };
  }, [userId, check, session]);

  // Accepting a new key (here or in the warning) resets the pin: show it as it is now.
  const isChanged = changed !== undefined;
  useEffect(() => {
    if (!user || isChanged) return;
    let live = true;
    void session.store.getPin(session.userId, user.id).then((p) => live && setPin(p));
    return () => {
      live = false;
    };
  }, [isChanged, user, session]);

  if (error) return <p className="error" role="alert">Cannot load {username}.</p>;
  if (data && !user) return <p className="error" role="alert">There is no user named {username}.</p>;
  if (!user) return <p role="status">Loading…</p>;
  if (!user.identityKey || !session.identity) return <p>{username} has no identity key yet: there is no safety number to compare.</p>;

  const presented = unb64(user.identityKey.key);
  const digits = safetyNumber({ userId: session.userId, identityKey: session.identity.publicKey }, { userId: user.id, identityKey: presented });
  const groups = formatSafetyNumber(digits);
  const mark = (verified: boolean) =>
    void action.run(async () => {
      await session.store.markVerified(session.userId, user.id, presented, verified);
      setPin(await session.store.getPin(session.userId, user.id));
    });
  const accept = () =>
    void action.run(async () => {
      await trust.accept(user.id);
      setPin(await session.store.getPin(session.userId, user.id));
    });
  const self = user.id === session.userId;
  return (
    <section className="card safety" aria-labelledby="safety-title">
      <h2 id="safety-title">Safety number with {username}</h2>
      {self ? (
        <p>This is you: compare safety numbers from a conversation with someone else.</p>
      ) : (
        <>
          <p>
            Compare this number with the one {username} sees, in person or over a call. If they match, nobody is between you.
          </p>
          <p className="digits" role="group" aria-label="Safety number">
            {groups.map((g, i) => (
              <span key={i}>{g}</span>
            ))}
          </p>
          {changed ? (
            <div role="alert">
              <p>{username}'s identity key has changed since you last saw it. This is the number for the new key.</p>
              <button type="button" onClick={accept} disabled={action.busy}>Accept {username}'s new key</button>
            </div>
          ) : pin?.verified ? (
            <p>
              <strong>Verified.</strong>{' '}
              <button type="button" className="link" onClick={() => mark(false)} disabled={action.busy}>Clear verification</button>
            </p>
          ) : (
            <p>
              Not verified yet.{' '}
              <button type="button" onClick={() => mark(true)} disabled={action.busy || pin === undefined}>Mark {username} as verified</button>
            </p>
          )}
          {action.error && <p className="error" role="alert">{action.error}</p>}
          <p>
            <Link to={`/dm/${encodeURIComponent(username)}`}>Message {username}</Link>
          </p>
        </>
      )}
    </section>
  );
}

/**
 * The blocking warning of a contact whose identity key changed: sending to it
 * stays blocked until the person accepts the new key (after comparing safety
 * numbers, ideally). Focus moves to it when it appears.
 */
export function IdentityWarnings() {
  const trust = useTrust();
  const ref = useRef<HTMLElement>(null);
  const count = trust.changed.size;
  useEffect(() => {
    if (count > 0) ref.current?.focus();
  }, [count]);
  const [busy, setBusy] = useState(false);
  if (count === 0) return null;
  return (
    <section ref={ref} tabIndex={-1} className="identity-warning" role="alertdialog" aria-labelledby="identity-warning-title" aria-describedby="identity-warning-text">
      <h2 id="identity-warning-title">
        {[...trust.changed.values()].map((c) => c.username).join(', ')}: identity key changed
      </h2>
      <p id="identity-warning-text">
        A contact's identity key is not the one this browser knew. They may have reset their keys on a new device, or someone may be trying to read your messages.
        Nothing is sent to them until you accept the new key; compare safety numbers with them first.
      </p>
      <ul>
        {[...trust.changed.values()].map((c) => (
          <li key={c.userId}>
            <Link to={`/safety/${encodeURIComponent(c.username)}`}>Compare safety numbers with {c.username}</Link>{' '}
            <button
              type="button"
              disabled={busy}
              onClick={() => {
                setBusy(true);
                void trust
                  .accept(c.userId)
                  .then(() => {
                    // The warning goes with the last accepted key: the focus returns to the screen.
                    if (count === 1) requestAnimationFrame(focusMainHeading);
                  })
                  .finally(() => setBusy(false));
              }}
            >
              Accept {c.username}'s new key
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

const OFFER_DISMISSED = 'qchat.backupOfferDismissed';

/**
 * The offer of a key backup, while the account has none: the keys are only in
 * this browser until then. "Not now" hides it for this tab's session.
 */
export function BackupOffer({ session }: { session: Session }) {
  const { data } = useQuery(KeyBackupDocument, { fetchPolicy: 'cache-and-network' });
  const [dismissed, setDismissed] = useState(() => sessionStorage.getItem(OFFER_DISMISSED) === session.userId);
  if (!data || typeof data.keyBackup === 'string' || dismissed || !session.identity) return null;
  return (
    <aside className="banner offer" aria-labelledby="backup-offer-title">
      <p>
        <strong id="backup-offer-title">Back up your keys.</strong> They are only in this browser: without a key backup, a new browser cannot read your history.
      </p>
      <Link to="/settings" className="button">Create a key backup</Link>{' '}
      <button
        type="button"
        className="secondary"
        onClick={() => {
          sessionStorage.setItem(OFFER_DISMISSED, session.userId);
          setDismissed(true);
          requestAnimationFrame(focusMainHeading);
        }}
      >
        Not now
      </button>
    </aside>
  );
}
