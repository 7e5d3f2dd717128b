import { describe, expect, it } from 'vitest';
import { PerigeeError, type ErrorCode } from '../../src/errors.js';
import {
  encodeFrame,
  FrameParser,
  getHeader,
  type Frame,
  type FrameParserOptions,
  type StompVersion,
} from '../../src/protocol/index.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const textOf = (frame: Frame): string => new TextDecoder().decode(frame.body);

function parseAll(
  input: string | Uint8Array,
  options: FrameParserOptions = {},
  chunkSize = Infinity,
): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser((frame) => frames.push(frame), options);
  const data = typeof input === 'string' ? bytes(input) : input;
  for (let i = 0; i < data.length; i += chunkSize) parser.push(data.subarray(i, i + chunkSize));
  return frames;
}

function parseError(input: string | Uint8Array, options: FrameParserOptions = {}): PerigeeError {
  try {
    parseAll(input, options);
  } catch (error) {
    expect(error).toBeInstanceOf(PerigeeError);
    return error as PerigeeError;
  }
  throw new Error('expected the parser to refuse the input');
}

function expectCode(
  input: string | Uint8Array,
  code: ErrorCode,
  options: FrameParserOptions = {},
): void {
  expect(parseError(input, options).code).toBe(code);
}

describe('FrameParser', () => {
  it('reads a frame, its ordered headers and its body', () => {
    const [frame] = parseAll('SEND\ndestination:/a\nfoo:bar\n\nhello\0');
    expect(frame!.command).toBe('SEND');
    expect(frame!.headers).toEqual([
      ['destination', '/a'],
      ['foo', 'bar'],
    ]);
    expect(textOf(frame!)).toBe('hello');
  });

  it('reads the same frames whatever the chunking, one byte at a time included', () => {
    const input =
      'CONNECT\naccept-version:1.2\n\n\0\nSEND\ndestination:/a\ncontent-length:3\n\na\0b\0\n\nMESSAGE\nx:y\n\n\0';
    const whole = parseAll(input);
    expect(whole).toHaveLength(3);
    for (const size of [1, 2, 3, 7, 13]) expect(parseAll(input, {}, size)).toEqual(whole);
  });

  it('reads content-length bodies that contain NUL octets', () => {
    const [frame] = parseAll(
      new Uint8Array([...bytes('SEND\ncontent-length:4\n\n'), 0, 1, 0, 2, 0]),
    );
    expect([...frame!.body]).toEqual([0, 1, 0, 2]);
  });

  it('ends a body without content-length at the first NUL', () => {
    const frames = parseAll('SEND\n\nfirst\0SEND\n\nsecond\0');
    expect(frames.map(textOf)).toEqual(['first', 'second']);
  });

  it('accepts CRLF line ends (STOMP 1.2)', () => {
    const [frame] = parseAll('SEND\r\ndestination:/a\r\n\r\nbody\0');
    expect(frame!.headers).toEqual([['destination', '/a']]);
    expect(textOf(frame!)).toBe('body');
  });

  it('treats EOLs between frames as heart-beats', () => {
    let beats = 0;
    const frames = parseAll('\n\r\n\nSEND\n\n\0\n\n', { onHeartBeat: () => beats++ });
    expect(frames).toHaveLength(1);
    expect(beats).toBe(5);
  });

  it('keeps repeated headers in order; the first is the value', () => {
    const [frame] = parseAll('SEND\nfoo:first\nfoo:second\n\n\0');
    expect(frame!.headers).toEqual([
      ['foo', 'first'],
      ['foo', 'second'],
    ]);
    expect(getHeader(frame!, 'foo')).toBe('first');
  });

  it('keeps colons after the first one in a header value', () => {
    const [frame] = parseAll('SEND\nurl:http://x:80/\n\n\0', { version: '1.0' });
    expect(getHeader(frame!, 'url')).toBe('http://x:80/');
  });

  describe('header escaping per version', () => {
    const raw = 'MESSAGE\nk\\cey:a\\nb\\\\c\\cd\n\n\0';

    it('STOMP 1.0 has none', () => {
      const [frame] = parseAll(raw, { version: '1.0' });
      expect(frame!.headers).toEqual([['k\\cey', 'a\\nb\\\\c\\cd']]);
    });

    it('STOMP 1.1 decodes \\\\, \\n and \\c', () => {
      const [frame] = parseAll(raw, { version: '1.1' });
      expect(frame!.headers).toEqual([['k:ey', 'a\nb\\c:d']]);
    });

    it('STOMP 1.2 adds \\r; 1.1 refuses it', () => {
      expect(getHeader(parseAll('MESSAGE\nk:a\\rb\n\n\0', { version: '1.2' })[0]!, 'k')).toBe(
        'a\rb',
      );
      expectCode('MESSAGE\nk:a\\rb\n\n\0', 'INVALID_ESCAPE', { version: '1.1' });
    });

    it('refuses an undefined escape such as \\t, and a trailing backslash', () => {
      expectCode('SEND\nk:a\\tb\n\n\0', 'INVALID_ESCAPE', { version: '1.2' });
      expectCode('SEND\nk:ab\\\n\n\0', 'INVALID_ESCAPE', { version: '1.2' });
    });

    it('never unescapes CONNECT or CONNECTED headers', () => {
      const frames = parseAll('CONNECT\npasscode:a\\tb\\c\n\n\0CONNECTED\nserver:x\\ny\n\n\0', {
        version: '1.2',
      });
      expect(getHeader(frames[0]!, 'passcode')).toBe('a\\tb\\c');
      expect(getHeader(frames[1]!, 'server')).toBe('x\\ny');
    });

    it('applies a version change made from inside onFrame to the next frame of the same chunk', () => {
      const seen: Frame[] = [];
      const parser = new FrameParser(
        (frame) => {
          seen.push(frame);
          if (frame.command === 'CONNECT') parser.version = '1.0';
        },
        { version: '1.2' },
      );
      parser.push(bytes('CONNECT\n\n\0SEND\nk:a\\tb\n\n\0'));
      expect(getHeader(seen[1]!, 'k')).toBe('a\\tb');
    });
  });

  describe('refuses malformed input with our own error', () => {
    it('garbage instead of a command', () => {
      expectCode('\x00\x01\x02garbage\n\n\0', 'INVALID_COMMAND');
      expectCode('send\n\n\0', 'INVALID_COMMAND');
      expectCode('GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'INVALID_COMMAND');
    });

    it('a header line without a colon, or with an empty name', () => {
      expectCode('SEND\nno colon here\n\n\0', 'MALFORMED_FRAME');
      expectCode('SEND\n:value\n\n\0', 'MALFORMED_FRAME');
    });

    it('a NUL inside the headers (the blank line is missing)', () => {
      expect(parseError('SEND\ndestination:/a\n\0SEND\n\n\0').detail).toMatch(/blank line/);
    });

    it('invalid UTF-8 in a header', () => {
      expectCode(
        new Uint8Array([...bytes('SEND\nk:'), 0xc3, 0x28, ...bytes('\n\n\0')]),
        'INVALID_UTF8',
      );
    });

    it('a content-length that lies', () => {
      expectCode('SEND\ncontent-length:2\n\nhello\0', 'CONTENT_LENGTH_MISMATCH');
      expectCode('SEND\ncontent-length:abc\n\nhello\0', 'CONTENT_LENGTH_MISMATCH');
      expectCode('SEND\ncontent-length:-1\n\n\0', 'CONTENT_LENGTH_MISMATCH');
    });

    it('stays failed after an error', () => {
      const parser = new FrameParser(() => {});
      expect(() => parser.push(bytes('bad\n'))).toThrow(PerigeeError);
      expect(() => parser.push(bytes('SEND\n\n\0'))).toThrow(PerigeeError);
    });
  });

  describe('limits, enforced before the bytes are kept', () => {
    const limits = { maxFrameBytes: 200, maxHeaders: 3, maxHeaderLineBytes: 32, maxBodyBytes: 100 };

    it('header count', () => {
      expectCode('SEND\na:1\nb:2\nc:3\nd:4\n\n\0', 'TOO_MANY_HEADERS', { limits });
    });

    it('header line length, even before the line ends', () => {
      const parser = new FrameParser(() => {}, { limits });
      parser.push(bytes('SEND\nk:'));
      expect(() => parser.push(bytes('x'.repeat(40)))).toThrow(/Header line too long/);
    });

    it('body size announced by content-length, before any body byte arrives', () => {
      expectCode('SEND\ncontent-length:101\n\n', 'BODY_TOO_LARGE', { limits });
    });

    it('body size without content-length, as it grows', () => {
      const parser = new FrameParser(() => {}, { limits });
      parser.push(bytes('SEND\n\n'));
      parser.push(bytes('x'.repeat(100)));
      expect(() => parser.push(bytes('x'))).toThrow(/Body too large/);
    });

    it('whole frame size', () => {
      const headers = Array.from({ length: 3 }, (_, i) => `h${i}:${'v'.repeat(28)}\n`).join('');
      expectCode(`SEND\n${headers}\n${'x'.repeat(99)}\0`, 'FRAME_TOO_LARGE', { limits });
    });

    it('accepts a frame exactly at the limits', () => {
      const [frame] = parseAll(`SEND\nk:${'v'.repeat(30)}\n\n${'x'.repeat(100)}\0`, { limits });
      expect(frame!.body.length).toBe(100);
    });
  });
});

describe('encodeFrame', () => {
  const cases: [StompVersion, string][] = [
    ['1.0', 'SEND\nk:a\\b\n\n\0'],
    ['1.1', 'SEND\nk:a\\\\b\n\n\0'],
    ['1.2', 'SEND\nk:a\\\\b\n\n\0'],
  ];
  for (const [version, expected] of cases) {
    it(`escapes for STOMP ${version}`, () => {
      const encoded = encodeFrame(
        { command: 'SEND', headers: [['k', 'a\\b']], body: new Uint8Array() },
        version,
      );
      expect(new TextDecoder().decode(encoded)).toBe(expected);
    });
  }

  it('escapes CR only in 1.2, and colon and LF from 1.1 on', () => {
    const frame: Frame = {
      command: 'MESSAGE',
      headers: [['a:b', 'c\nd\re']],
      body: new Uint8Array(),
    };
    expect(new TextDecoder().decode(encodeFrame(frame, '1.2'))).toBe(
      'MESSAGE\na\\cb:c\\nd\\re\n\n\0',
    );
    expect(new TextDecoder().decode(encodeFrame(frame, '1.1'))).toBe(
      'MESSAGE\na\\cb:c\\nd\re\n\n\0',
    );
  });

  it('never escapes CONNECT headers; replaces what cannot be carried', () => {
    const frame: Frame = {
      command: 'CONNECT',
      headers: [['passcode', 'a:b\\c\nd']],
      body: new Uint8Array(),
    };
    expect(new TextDecoder().decode(encodeFrame(frame, '1.2'))).toBe(
      'CONNECT\npasscode:a:b\\c d\n\n\0',
    );
  });

  it('adds content-length when the body holds a NUL', () => {
    const frame: Frame = { command: 'SEND', headers: [], body: new Uint8Array([1, 0, 2]) };
    const [parsed] = parseAll(encodeFrame(frame, '1.2'));
    expect(getHeader(parsed!, 'content-length')).toBe('3');
    expect([...parsed!.body]).toEqual([1, 0, 2]);
  });
});

describe('FrameParser: what partial frames cost', () => {
  it('keeps only the body bytes that arrived, not what content-length announces', () => {
    const before = process.memoryUsage().arrayBuffers;
    const parsers: FrameParser[] = [];
    // 200 frames that each announce a 1 MiB body and send 10 bytes of it.
    for (let i = 0; i < 200; i++) {
      const parser = new FrameParser(() => {});
      parser.push(bytes(`SEND\ndestination:/a\ncontent-length:1048576\n\n0123456789`));
      parsers.push(parser);
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    // Reserving each announced body would take 200 MiB.
    expect(grown).toBeLessThan(20 * 1024 * 1024);
    expect(parsers.every((parser) => parser.midFrame)).toBe(true);
  });

  it('still assembles a sized body from many chunks', () => {
    const body = 'x'.repeat(1000) + '\0' + 'y'.repeat(1000);
    const input = `SEND\ncontent-length:${body.length}\n\n${body}\0`;
    const [frame] = parseAll(input, {}, 7);
    expect(textOf(frame!)).toBe(body);
  });
});
