import SockJS from 'sockjs-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, type EchoServer } from '../support/sockjs-echo-server.js';

/**
 * The real sockjs-client (1.6, the client of the 0.3.3 protocol) against the echo server, in
 * Node. It runs websocket (through faye-websocket), xhr-streaming, xhr-polling (through Node's
 * http) and eventsource (through the eventsource package it bundles). htmlfile and jsonp-polling
 * cannot run in Node: they need a DOM (an iframe or `<script>` tags, `document.domain`), so
 * sockjs-client reports them disabled; they are left to the Chromium tests.
 */

let echoServer: EchoServer;
let baseUrl: string;

beforeAll(async () => {
  echoServer = await startEchoServer(0);
  baseUrl = `http://127.0.0.1:${echoServer.port}`;
});

afterAll(async () => {
  await echoServer.close();
});

interface Conversation {
  readonly transport: string;
  readonly received: string[];
  readonly close: { code: number; reason: string };
}

/**
 * Opens `service` with only `transport` allowed (any, when undefined), sends `messages` once open,
 * closes once as many messages came back, and resolves on the close, whoever closed.
 */
function converse(
  service: string,
  transport: string | undefined,
  messages: readonly string[],
): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const socket = new SockJS(
      `${baseUrl}/${service}`,
      null,
      transport ? { transports: [transport] } : {},
    );
    const received: string[] = [];
    let transportUsed = '';
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no conversation over ${transport ?? 'any transport'}`));
    }, 10_000);
    socket.onopen = () => {
      transportUsed = (socket as unknown as { transport: string }).transport;
      for (const message of messages) socket.send(message);
    };
    socket.onmessage = (event: { data: string }) => {
      received.push(event.data);
      if (received.length === messages.length) socket.close();
    };
    socket.onclose = (event: { code: number; reason: string }) => {
      clearTimeout(timer);
      resolve({
        transport: transportUsed,
        received,
        close: { code: event.code, reason: event.reason },
      });
    };
  });
}

/** Text that browsers and proxies like to mangle, which SockJS must carry intact. */
const TRICKY = [
  'plain',
  'quotes " and \\ backslashes',
  'line\nbreaks\r\nand\ttabs',
  'control \u0000\u001f',
  'separators \u2028\u2029 and joiners \u200c\u200d',
  'specials \ufff0\uffff \ufeff',
  'astral 🚀 and ü',
  'STOMP-like\nframe:1\n\n\u0000',
];

describe('sockjs-client in Node', () => {
  for (const transport of ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource']) {
    it(`echoes messages in order over ${transport}`, async () => {
      const conversation = await converse('echo', transport, TRICKY);
      expect(conversation.transport).toBe(transport);
      expect(conversation.received).toEqual(TRICKY);
      expect(conversation.close.code).toBe(1000);
    });
  }

  it('reports the server close code and reason', async () => {
    const conversation = await converse('close', 'xhr-streaming', []);
    expect(conversation.close).toEqual({ code: 3000, reason: 'Go away!' });
    const overWebSocket = await converse('close', 'websocket', []);
    expect(overWebSocket.close).toEqual({ code: 3000, reason: 'Go away!' });
  });

  it('falls back to a streaming transport where websocket is disabled', async () => {
    const conversation = await converse('disabled_websocket_echo', undefined, ['fallback']);
    expect(conversation.transport).not.toBe('websocket');
    expect(conversation.received).toEqual(['fallback']);
  });

  it('works with cookie_needed', async () => {
    const conversation = await converse('cookie_needed_echo', 'xhr-polling', ['cookie']);
    expect(conversation.received).toEqual(['cookie']);
  });
});
