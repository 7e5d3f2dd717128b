import {
  encodeFrameText,
  MessageDelivery,
  type Frame,
  type StompVersion,
  type TextForm,
} from '../../protocol/index.js';
import type { Transport } from '../transport.js';
import { escapeMessageText, type SockJSConnection } from './sockjs/index.js';

/** The inside of a JSON string, as the form of a frame's text: escaped parts are cached. */
const JSON_TEXT: TextForm = { escape: escapeMessageText, newline: '\\n' };

/**
 * STOMP over a SockJS session: each SockJS message carries STOMP frames as text. A batch of frames
 * becomes one SockJS message (one `a[...]` entry): STOMP parsers read a stream, so the frames
 * need no separation beyond their NULs.
 */
export class SockJSStompTransport implements Transport {
  readonly name: string;
  readonly unidirectional: boolean;
  readonly requestHeaders: Readonly<Record<string, string | string[] | undefined>>;
  readonly remoteAddress: string | undefined;
  onData: ((data: string | Uint8Array) => void) | null = null;
  onClose: ((reason: string) => void) | null = null;
  private readonly connection: SockJSConnection;

  constructor(connection: SockJSConnection) {
    this.connection = connection;
    this.name = connection.transport;
    this.unidirectional = !connection.transport.includes('websocket');
    this.requestHeaders = connection.headers;
    this.remoteAddress = connection.remoteAddress;
    connection.onmessage = (message) => this.onData?.(message);
    connection.onclose = (code, reason) => this.onClose?.(`${code} ${reason}`);
  }

  get bufferedBytes(): number {
    return this.connection.bufferedBytes;
  }

  writeHeartBeat(): boolean {
    return this.connection.send('\n');
  }

  /**
   * A batch becomes one SockJS message, JSON-encoded here rather than by the session: a MESSAGE's
   * own header lines are escaped once per subscription, its shared part once per message, so a
   * delivery costs its sequence line and a few string joins.
   */
  writeFrames(frames: readonly Frame[], version: StompVersion): boolean {
    if (this.connection.sendEncoded === undefined) {
      let text = '';
      for (const frame of frames) text += encodeFrameText(frame, version);
      return this.connection.send(text);
    }
    let encoded = '"';
    for (const frame of frames) {
      encoded +=
        frame instanceof MessageDelivery
          ? frame.encodeHeadAs(version, JSON_TEXT) + frame.shared.tailTextAs(version, JSON_TEXT)
          : escapeMessageText(encodeFrameText(frame, version));
    }
    return this.connection.sendEncoded(`${encoded}"`);
  }

  close(code: number, reason: string): void {
    // The code travels in the `c[code,"reason"]` frame as is: clients read the error table's
    // WebSocket codes (1012 restart, 1013 try again later) to decide whether to reconnect.
    this.connection.close(code, reason);
  }
}
