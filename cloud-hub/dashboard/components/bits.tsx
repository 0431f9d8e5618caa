/** Small shared pieces: status badges, empty states, error boxes. */
import type { ComponentChildren } from 'preact';

const tone: Record<string, string> = {
  online: 'good',
  active: 'good',
  completed: 'good',
  pass: 'good',
  running: 'info',
  assigned: 'info',
  downloading: 'info',
  loading: 'info',
  'smoke-testing': 'info',
  verifying: 'info',
  staged: 'info',
  pending: 'muted',
  'awaiting-approval': 'warn',
  paused: 'warn',
  'insufficient-data': 'muted',
  'not-configured': 'muted',
  warning: 'warn',
  skipped: 'warn',
  'timed-out': 'bad',
  offline: 'bad',
  failed: 'bad',
  fail: 'bad',
  drift: 'bad',
  'rolled-back': 'bad',
  cancelled: 'muted',
  superseded: 'muted',
  'never-connected': 'muted',
};

export function Badge(props: { value: string }) {
  return <span class={`badge ${tone[props.value] ?? 'muted'}`}>{props.value}</span>;
}

export function Empty(props: { children: ComponentChildren }) {
  return <p class="empty">{props.children}</p>;
}

export function ErrorBox(props: { error: unknown }) {
  return <p class="error">{props.error instanceof Error ? props.error.message : String(props.error)}</p>;
}
