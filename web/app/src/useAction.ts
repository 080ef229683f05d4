// useAction is the bookkeeping every form shares: busy while its action runs
// (so a second click sends nothing twice), and the reason in words when the
// action fails.

import { useCallback, useState } from 'react';
import { type DescribeOptions, describeError } from './errors';

export function useAction(opts: DescribeOptions = {}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const { signIn, register } = opts;
  const run = useCallback(
    async (action: () => Promise<void>) => {
      setBusy(true);
      setError(null);
      try {
        await action();
      } catch (err) {
        setError(describeError(err, { signIn, register }));
      } finally {
        setBusy(false);
      }
    },
    [signIn, register],
  );
  return { busy, error, setError, run };
}
