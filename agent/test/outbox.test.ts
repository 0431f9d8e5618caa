/**
 * The on-disk outbox: what is appended comes back in order until acknowledged, survives a restart
 * and a torn write, and stays within its byte bound by dropping (and counting) the oldest data.
 */
import { appendFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Outbox } from '../src/state/outbox.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-outbox-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const payloads = (entries: { payload: string }[]) => entries.map((e) => e.payload);
const segments = async () => (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort();

describe('outbox', () => {
  it('returns appended messages oldest first, with increasing ids', async () => {
    const outbox = await Outbox.open(dir);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await outbox.append('t', `p${i}`));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(5);
    const pending = await outbox.pending();
    expect(payloads(pending)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    expect(pending.map((e) => e.id)).toEqual(ids);
    expect(pending.every((e) => e.topic === 't')).toBe(true);
  });

  it('keeps order when appends race each other', async () => {
    const outbox = await Outbox.open(dir, { segmentBytes: 200 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => outbox.append('t', `p${i}`)));
    const pending = await outbox.pending();
    expect(payloads(pending)).toEqual(Array.from({ length: 40 }, (_, i) => `p${i}`));
    expect((await segments()).length).toBeGreaterThan(1);
  });

  it('removes acknowledged messages, and they stay removed after a restart', async () => {
    let outbox = await Outbox.open(dir, { segmentBytes: 120 });
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push(await outbox.append('t', `p${i}`));
    await outbox.ack(ids[5] as number);
    expect(payloads(await outbox.pending())).toEqual(['p6', 'p7', 'p8', 'p9']);
    expect(await outbox.stats()).toMatchObject({ pending: 4, dropped: 0 });

    outbox = await Outbox.open(dir, { segmentBytes: 120 });
    expect(payloads(await outbox.pending())).toEqual(['p6', 'p7', 'p8', 'p9']);
    // New ids continue after the old ones: nothing is confused with an acknowledged entry.
    const next = await outbox.append('t', 'p10');
    expect(next).toBeGreaterThan(ids.at(-1) as number);
    expect(payloads(await outbox.pending())).toEqual(['p6', 'p7', 'p8', 'p9', 'p10']);
  });

  it('deletes segment files once everything in them is acknowledged', async () => {
    const outbox = await Outbox.open(dir, { segmentBytes: 100 });
    let last = 0;
    for (let i = 0; i < 30; i++) last = await outbox.append('t', `payload-${i}`);
    expect((await segments()).length).toBeGreaterThan(3);
    await outbox.ack(last);
    expect(await outbox.pending()).toEqual([]);
    expect((await segments()).length).toBeLessThanOrEqual(1);
    expect((await outbox.stats()).pending).toBe(0);
  });

  it('replays everything unacknowledged after a restart, in order', async () => {
    const first = await Outbox.open(dir, { segmentBytes: 150 });
    for (let i = 0; i < 20; i++) await first.append(i % 2 ? 'a' : 'b', `p${i}`);
    // A new process opens the same directory (the old one was killed without closing anything).
    const second = await Outbox.open(dir, { segmentBytes: 150 });
    const pending = await second.pending();
    expect(payloads(pending)).toEqual(Array.from({ length: 20 }, (_, i) => `p${i}`));
    expect(pending.map((e) => e.topic)).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 ? 'a' : 'b')));
  });

  it('ignores a torn last line after a power cut and appends cleanly after it', async () => {
    const outbox = await Outbox.open(dir);
    await outbox.append('t', 'whole-1');
    await outbox.append('t', 'whole-2');
    const [segment] = await segments();
    const path = join(dir, segment as string);
    await appendFile(path, '{"id":3,"topic":"t","payl'); // half a line: the write was cut
    const tornSize = (await stat(path)).size;

    const reopened = await Outbox.open(dir);
    expect(payloads(await reopened.pending())).toEqual(['whole-1', 'whole-2']);
    await reopened.append('t', 'after');
    expect(payloads(await reopened.pending())).toEqual(['whole-1', 'whole-2', 'after']);
    // The torn bytes were cut away, not glued to the next line.
    expect((await readFile(path, 'utf8')).includes('payl\n')).toBe(false);
    expect((await stat(path)).size).toBeLessThan(tornSize + 60);
    expect(payloads(await (await Outbox.open(dir)).pending())).toEqual(['whole-1', 'whole-2', 'after']);
  });

  it('ignores a garbage line and everything after it in that segment', async () => {
    const outbox = await Outbox.open(dir);
    await outbox.append('t', 'good');
    const [segment] = await segments();
    await appendFile(join(dir, segment as string), 'not json at all\n');
    const reopened = await Outbox.open(dir);
    expect(payloads(await reopened.pending())).toEqual(['good']);
  });

  it('stays within its byte bound by dropping the oldest segment, and counts what was dropped', async () => {
    const maxBytes = 2000;
    const outbox = await Outbox.open(dir, { maxBytes, segmentBytes: 500 });
    const total = 100;
    for (let i = 0; i < total; i++) await outbox.append('t', `sample-${String(i).padStart(3, '0')}`);
    const stats = await outbox.stats();
    expect(stats.bytes).toBeLessThanOrEqual(maxBytes);
    const pending = await outbox.pending(1000);
    // The newest data is kept, contiguous and in order; the dropped count accounts for the rest.
    expect(pending.at(-1)?.payload).toBe('sample-099');
    const first = Number(pending[0]?.payload.slice(7));
    expect(payloads(pending)).toEqual(
      Array.from({ length: total - first }, (_, i) => `sample-${String(first + i).padStart(3, '0')}`),
    );
    expect(stats.dropped).toBe(first);
    expect(stats.dropped + stats.pending).toBe(total);
    // The count survives a restart, so telemetry can report it.
    expect((await (await Outbox.open(dir, { maxBytes, segmentBytes: 500 })).stats()).dropped).toBe(first);
  });

  it('does not count already-acknowledged messages as dropped', async () => {
    const outbox = await Outbox.open(dir, { maxBytes: 1000, segmentBytes: 300 });
    let id = 0;
    for (let i = 0; i < 10; i++) id = await outbox.append('t', `x${i}`);
    await outbox.ack(id);
    for (let i = 0; i < 60; i++) await outbox.append('t', `y${String(i).padStart(2, '0')}`);
    const stats = await outbox.stats();
    const pending = await outbox.pending(1000);
    expect(pending.every((e) => e.payload.startsWith('y'))).toBe(true);
    expect(stats.dropped).toBe(60 - pending.length);
  });

  it('gives pending messages in pages of the requested size', async () => {
    const outbox = await Outbox.open(dir, { segmentBytes: 100 });
    for (let i = 0; i < 12; i++) await outbox.append('t', `p${i}`);
    const page = await outbox.pending(5);
    expect(payloads(page)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    await outbox.ack(page.at(-1)?.id as number);
    expect(payloads(await outbox.pending(5))).toEqual(['p5', 'p6', 'p7', 'p8', 'p9']);
  });
});
