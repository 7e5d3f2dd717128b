import { PerigeeError } from '../errors.js';

/** A `heart-beat` header: [can send every ms, wants to receive every ms]; 0 means never. */
export type HeartBeat = readonly [send: number, receive: number];

const HEART_BEAT = /^\s*(\d{1,9})\s*,\s*(\d{1,9})\s*$/;

/** Parses a `heart-beat` header value; absent means 0,0 (STOMP 1.2 §Heart-beating). */
export function parseHeartBeat(value: string | undefined): HeartBeat {
  if (value === undefined) return [0, 0];
  const match = HEART_BEAT.exec(value);
  if (!match) {
    throw new PerigeeError(
      'INVALID_HEADER',
      `heart-beat must be two non-negative integers "cx,cy", got "${value}"`,
    );
  }
  return [Number(match[1]), Number(match[2])];
}

/**
 * The intervals both sides agree on (STOMP 1.2 §Heart-beating): each direction runs at the
 * larger of what the sender can do and what the receiver wants, or not at all if either says 0.
 *
 * @param local what this side announces: [can send, wants to receive]
 * @param remote what the other side announced
 * @returns outgoing: how often this side must send something; incoming: how often the other
 *   side will send something
 */
export function negotiateHeartBeat(
  local: HeartBeat,
  remote: HeartBeat,
): { outgoing: number; incoming: number } {
  const [localSend, localReceive] = local;
  const [remoteSend, remoteReceive] = remote;
  return {
    outgoing: localSend === 0 || remoteReceive === 0 ? 0 : Math.max(localSend, remoteReceive),
    incoming: remoteSend === 0 || localReceive === 0 ? 0 : Math.max(remoteSend, localReceive),
  };
}

/**
 * How long to wait for data from a peer that promised to send every `incoming` ms before
 * declaring it dead. The spec only asks for "some tolerance"; network jitter and event-loop
 * pauses are real, so allow twice the interval plus a second.
 */
export function heartBeatDeadline(incoming: number): number {
  return incoming * 2 + 1000;
}
