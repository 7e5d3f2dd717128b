import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PerigeeError } from '../../src/errors.js';
import {
  encodeFrame,
  FrameParser,
  MessageDelivery,
  SharedMessage,
  type Frame,
  type Header,
  type StompVersion,
} from '../../src/protocol/index.js';

/**
 * Property tests: for every version, encoding then parsing gives the frame back, in any
 * chunking; and no byte sequence makes the parser throw anything but a PerigeeError.
 */

const versions: StompVersion[] = ['1.0', '1.1', '1.2'];
const commands = [
  'SEND',
  'SUBSCRIBE',
  'MESSAGE',
  'RECEIPT',
  'ERROR',
  'ACK',
  'CONNECT',
  'CONNECTED',
];

/** Header text a version can carry: 1.0 and CONNECT/CONNECTED cannot carry CR or LF. */
function headerText(version: StompVersion, command: string, isName: boolean): fc.Arbitrary<string> {
  const escaped = version !== '1.0' && command !== 'CONNECT' && command !== 'CONNECTED';
  return fc
    .string({
      unit: fc.oneof(
        fc.constantFrom(':', '\\', '\n', '\r', 'é', '✓', '🚀', ' '),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
      ),
      maxLength: 12,
    })
    .filter((text) => {
      if (isName && text.length === 0) return false;
      if (!escaped) return !/[\r\n]/.test(text) && !(isName && text.includes(':'));
      // 1.1 cannot escape CR; a CR at the very end of a line would read as CRLF.
      if (version === '1.1') return !text.includes('\r');
      return true;
    })
    .filter((text) => !(isName && text === 'content-length'));
}

function frameFor(version: StompVersion): fc.Arbitrary<Frame> {
  return fc.constantFrom(...commands).chain((command) =>
    fc
      .record({
        headers: fc.array(
          fc.tuple(headerText(version, command, true), headerText(version, command, false)),
          {
            maxLength: 6,
          },
        ),
        body: fc.uint8Array({ maxLength: 64 }),
      })
      .map(({ headers, body }) => ({
        command,
        headers: [...headers, ['content-length', String(body.length)] as Header],
        body,
      })),
  );
}

function parseChunks(data: Uint8Array, cuts: number[], version: StompVersion): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser((frame) => frames.push(frame), {
    version,
    limits: {
      maxFrameBytes: 1 << 20,
      maxBodyBytes: 1 << 20,
      maxHeaders: 64,
      maxHeaderLineBytes: 8192,
    },
  });
  let start = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b)) {
    parser.push(data.subarray(start, cut));
    start = cut;
  }
  parser.push(data.subarray(start));
  return frames;
}

const normalize = (frame: Frame): unknown => ({
  command: frame.command,
  headers: frame.headers.map(([name, value]) => [name, value]),
  body: [...frame.body],
});

describe('STOMP codec properties', () => {
  for (const version of versions) {
    it(`STOMP ${version}: parse(encode(frames)) returns the frames, in any chunking`, () => {
      fc.assert(
        fc.property(
          fc.array(frameFor(version), { minLength: 1, maxLength: 4 }),
          fc.array(fc.nat(), { maxLength: 8 }),
          (frames, cuts) => {
            const encoded = frames.map((frame) => encodeFrame(frame, version));
            const data = new Uint8Array(encoded.reduce((sum, part) => sum + part.length, 0));
            let offset = 0;
            for (const part of encoded) {
              data.set(part, offset);
              offset += part.length;
            }
            expect(parseChunks(data, cuts, version).map(normalize)).toEqual(frames.map(normalize));
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it('a MessageDelivery encodes exactly as the same frame built by hand', () => {
    fc.assert(
      fc.property(
        frameFor('1.2'),
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.constantFrom(...versions),
        (frame, id, version) => {
          const shared = new SharedMessage(frame.headers, frame.body);
          const delivery = new MessageDelivery([['subscription', id]], shared);
          const plain: Frame = {
            command: 'MESSAGE',
            headers: [['subscription', id], ...frame.headers],
            body: frame.body,
          };
          expect(encodeFrame(delivery, version)).toEqual(encodeFrame(plain, version));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a MessageDelivery writes its head in bytes exactly as its text head encodes', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 99 }), fc.maxSafeNat()),
        fc.constantFrom(...versions),
        fc.nat({ max: 5 }),
        (id, seq, version, offset) => {
          const shared = new SharedMessage([['destination', '/topic/a']], new Uint8Array(0));
          const delivery = new MessageDelivery([['subscription', id]], shared, seq);
          const expected = Buffer.from(delivery.encodeHead(version));
          expect(delivery.headLength(version)).toBe(expected.length);
          const target = Buffer.alloc(offset + expected.length + 1, 0xee);
          expect(delivery.writeHead(target, offset, version)).toBe(offset + expected.length);
          expect(target.subarray(offset, offset + expected.length)).toEqual(expected);
          // Nothing written outside its place.
          expect(target.subarray(0, offset).every((byte) => byte === 0xee)).toBe(true);
          expect(target[offset + expected.length]).toBe(0xee);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random bytes never make the parser throw anything but a PerigeeError', () => {
    const prefix = fc.constantFrom(
      '',
      'SEND\n',
      'CONNECT\n',
      'SEND\ncontent-length:5\n\n',
      'SEND\nk:',
    );
    fc.assert(
      fc.property(
        prefix,
        fc.uint8Array({ maxLength: 300 }),
        fc.constantFrom(...versions),
        fc.array(fc.nat(), { maxLength: 5 }),
        (start, noise, version, cuts) => {
          const data = new Uint8Array([...new TextEncoder().encode(start), ...noise]);
          try {
            parseChunks(data, cuts, version);
          } catch (error) {
            expect(error).toBeInstanceOf(PerigeeError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
