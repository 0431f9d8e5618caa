import { useState } from 'preact/hooks';
import { api, auth } from '../api.ts';
import type { Me } from '../types.ts';

export function SignIn(props: { onSignedIn: (me: Me) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const submit = async (event: Event) => {
    event.preventDefault();
    auth.set(token.trim());
    try {
      const me = await api<Me>('GET', '/me');
      if (me.kind !== 'token') throw new Error('a device secret cannot sign in here');
      props.onSignedIn(me);
    } catch (e) {
      auth.clear();
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <form class="sign-in card" onSubmit={submit}>
      <h1>edgefleet</h1>
      <p>
        Sign in with an API token. The hub wrote an admin token to <code>edgefleet-data/admin-token</code> on
        first start; <code>edgefleet token api --role viewer --name NAME</code> makes more.
      </p>
      <label>
        API token
        <input
          name="token"
          type="password"
          autocomplete="off"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        />
      </label>
      <button type="submit" disabled={token.trim() === ''}>
        Sign in
      </button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}
