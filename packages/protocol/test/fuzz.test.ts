/** Property-based fuzzing of every MQTT payload parser: arbitrary bytes give a typed error or a valid value. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  commandReply,
  commandRequest,
  decodeChunk,
  desiredState,
  parseDeviceTopic,
  parseMessage,
  reportedState,
  statsMessage,
  statusMessage,
  telemetryMessage,
  ValidationError,
} from '../src/index.ts';

const schemas = {
  statusMessage,
  desiredState,
  reportedState,
  telemetryMessage,
  statsMessage,
  commandRequest,
  commandReply,
};

/** JSON-ish values that often come close to the real shapes. */
const nearMiss = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(null, true, 0, -1, 1e308, '', 'online', '1.0.0', '2026-01-01T00:00:00Z', 'a'.repeat(64)),
    fc.string(),
    fc.double(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(
      fc.constantFrom(
        'state',
        'agentVersion',
        'ts',
        'revision',
        'models',
        'samples',
        'seq',
        'id',
        'ok',
        'windows',
        'issuedAt',
        'config',
      ),
      tie('value'),
      { maxKeys: 6 },
    ),
  ),
})).value;

describe('MQTT payload parsers under fuzzing', () => {
  for (const [name, schema] of Object.entries(schemas)) {
    it(`${name}: random bytes → ValidationError, never another exception`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
          try {
            parseMessage(schema, bytes, name);
          } catch (error) {
            expect(error).toBeInstanceOf(ValidationError);
          }
        }),
        { numRuns: 2000 },
      );
    });
    it(`${name}: near-miss JSON → ValidationError naming a field, or a valid message`, () => {
      fc.assert(
        fc.property(nearMiss, (value) => {
          try {
            parseMessage(schema, JSON.stringify(value) ?? 'null', name);
          } catch (error) {
            expect(error).toBeInstanceOf(ValidationError);
            expect((error as ValidationError).message).toMatch(/^invalid /);
          }
        }),
        { numRuns: 2000 },
      );
    });
  }

  it('topic parser: any string gives a parsed topic or undefined', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.constantFrom(
            'edgefleet/v1/devices/a/status',
            'edgefleet/v1/devices/+/cmd/x/reply',
            'edgefleet/v1/devices/a/chunks/zz',
          ),
        ),
        (topic) => {
          const parsed = parseDeviceTopic(topic);
          if (parsed) expect(topic.startsWith('edgefleet/v1/devices/')).toBe(true);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('chunk decoder: any bytes give a chunk or undefined', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const chunk = decodeChunk(bytes);
        if (chunk) expect(chunk.data.byteLength).toBe(bytes.byteLength - 8);
        else expect(bytes.byteLength).toBeLessThan(8);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('sequence numbers', () => {
  it('are refused beyond 32 bits, where the hub stores them, with the field named', () => {
    const window = {
      seq: 2 ** 31,
      model: 'm',
      version: '1.0.0',
      start: '2026-01-01T00:00:00Z',
      end: '2026-01-01T00:01:00Z',
      window: {},
    };
    const bytes = new TextEncoder().encode(JSON.stringify({ windows: [window] }));
    expect(() => parseMessage(statsMessage, bytes, 'stats')).toThrow(/windows\[0\]\.seq: Too big/);
    const ok = new TextEncoder().encode(JSON.stringify({ windows: [{ ...window, seq: 2 ** 31 - 1 }] }));
    expect(parseMessage(statsMessage, ok, 'stats').windows[0]?.seq).toBe(2 ** 31 - 1);
  });
});
