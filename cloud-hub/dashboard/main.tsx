/** The dashboard: sign in with an API token; fleet, device, model and rollout pages with live updates. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { api, auth, followLive } from './api.ts';
import { publishLive } from './data.ts';
import { DevicePage } from './pages/device.tsx';
import { FleetPage } from './pages/fleet.tsx';
import { ModelPage, ModelsPage } from './pages/models.tsx';
import { RolloutPage, RolloutsPage } from './pages/rollouts.tsx';
import { SignIn } from './pages/sign-in.tsx';
import type { Me } from './types.ts';

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const onChange = () => setHash(location.hash || '#/');
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

function App() {
  const hash = useHash();
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [live, setLive] = useState(false);

  useEffect(() => {
    if (!auth.token) return setMe(null);
    api<Me>('GET', '/me').then(setMe, () => {
      auth.clear();
      setMe(null);
    });
  }, []);
  useEffect(() => (me ? followLive(publishLive, setLive) : undefined), [me]);

  if (me === undefined) return <p class="empty">Loading…</p>;
  if (me === null) return <SignIn onSignedIn={setMe} />;
  const canWrite = me.role === 'admin' || me.role === 'operator';
  const [, section = '', id] = hash.slice(1).split('/').map(decodeURIComponent);
  const page =
    section === 'devices' && id ? (
      <DevicePage id={id} />
    ) : section === 'models' && id ? (
      <ModelPage name={id} />
    ) : section === 'models' ? (
      <ModelsPage />
    ) : section === 'rollouts' && id ? (
      <RolloutPage id={id} canWrite={canWrite} />
    ) : section === 'rollouts' ? (
      <RolloutsPage canWrite={canWrite} />
    ) : (
      <FleetPage />
    );
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          edgefleet
        </a>
        <nav>
          <a href="#/" class={section === '' || section === 'devices' ? 'on' : ''}>
            Fleet
          </a>
          <a href="#/models" class={section === 'models' ? 'on' : ''}>
            Models
          </a>
          <a href="#/rollouts" class={section === 'rollouts' ? 'on' : ''}>
            Rollouts
          </a>
        </nav>
        <span
          class={`live ${live ? 'on' : ''}`}
          data-testid="live"
          title={live ? 'live updates connected' : 'reconnecting'}
        >
          {live ? 'live' : 'offline'}
        </span>
        <button
          type="button"
          class="link"
          onClick={() => {
            auth.clear();
            location.hash = '#/';
            setMe(null);
          }}
        >
          sign out ({me.role})
        </button>
      </header>
      <main>{page}</main>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
