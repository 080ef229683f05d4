// Registration and sign-in. Registration makes the keys here, in the
// browser: an ML-DSA-65 identity key and a KEM key it certifies; the public
// keys go to the server, the seeds into IndexedDB.

import { useApolloClient } from '@apollo/client/react';
import { type Algorithm, KeyStore, LoginDocument, registerAccount } from '@qchat/client';
import { type FormEvent, useRef, useState } from 'react';
import { useFocusHeading } from '../focus';
import { Link, useRouter } from '../router';
import type { SavedSession } from '../session';
import { useAction } from '../useAction';

type OnSignedIn = (s: SavedSession, store?: KeyStore) => Promise<void>;

export function SignedOut({ onSignedIn }: { onSignedIn: OnSignedIn }) {
  const { path } = useRouter();
  // After signing out, or between the two forms, the focus starts at the form's heading.
  const main = useRef<HTMLElement>(null);
  useFocusHeading(main, path === '/register' ? 'register' : 'sign-in');
  return (
    <main className="auth" ref={main}>
      <h1>QChat</h1>
      <p className="tagline">Chat with post-quantum end-to-end encryption.</p>
      {path === '/register' ? <Register onSignedIn={onSignedIn} /> : <SignIn onSignedIn={onSignedIn} />}
    </main>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: OnSignedIn }) {
  const client = useApolloClient();
  const { navigate } = useRouter();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, run } = useAction({ signIn: true });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const { data } = await client.mutate({ mutation: LoginDocument, variables: { username: username.trim(), password } });
      if (!data) throw new Error('no answer');
      const p = data.login;
      await onSignedIn({ token: p.token, userId: p.user.id, username: p.user.username });
      navigate('/');
    });
  };

  return (
    <form className="card" onSubmit={submit} aria-labelledby="signin-title">
      <h2 id="signin-title">Sign in</h2>
      <label>
        Username
        <input name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      <label>
        Password
        <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && <p className="error" role="alert">{error}</p>}
      <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      <p>
        New here? <Link to="/register">Create an account</Link>
      </p>
    </form>
  );
}

function Register({ onSignedIn }: { onSignedIn: OnSignedIn }) {
  const client = useApolloClient();
  const { navigate } = useRouter();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [algorithm, setAlgorithm] = useState<Algorithm>('ML_KEM_768');
  const { busy, error, run } = useAction({ register: true });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const store = await KeyStore.open();
      const p = await registerAccount(client, store, { username: username.trim(), password, algorithm });
      await onSignedIn({ token: p.token, userId: p.user.id, username: p.user.username }, store);
      navigate('/');
    });
  };

  return (
    <form className="card" onSubmit={submit} aria-labelledby="register-title">
      <h2 id="register-title">Create an account</h2>
      <label>
        Username
        <input name="username" autoComplete="username" required minLength={3} maxLength={32} pattern="[A-Za-z0-9_.\-]+" aria-describedby="username-hint" value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      <p id="username-hint" className="hint">3 to 32 letters, digits, dots, dashes or underscores.</p>
      <label>
        Password
        <input name="password" type="password" autoComplete="new-password" required minLength={8} aria-describedby="password-hint" value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      <p id="password-hint" className="hint">At least 8 characters.</p>
      <label>
        Encryption key
        <select value={algorithm} onChange={(e) => setAlgorithm(e.target.value === 'X_WING' ? 'X_WING' : 'ML_KEM_768')}>
          <option value="ML_KEM_768">ML-KEM-768 (recommended)</option>
          <option value="X_WING">X-Wing (ML-KEM-768 with X25519)</option>
        </select>
      </label>
      <p className="hint">Your key is made in this browser and its secret part never leaves it.</p>
      {error && <p className="error" role="alert">{error}</p>}
      <button type="submit" disabled={busy}>{busy ? 'Creating your account…' : 'Create account'}</button>
      <p>
        Already have an account? <Link to="/">Sign in</Link>
      </p>
    </form>
  );
}
