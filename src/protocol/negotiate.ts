import { PerigeeError } from '../errors.js';
import { createFrame, getHeader, type Frame, type Header, type StompVersion } from './frame.js';

/**
 * The version both sides speak: the highest the client accepts. STOMP 1.2 §"Protocol
 * Negotiation": without accept-version the client speaks 1.0.
 */
export function negotiateVersion(acceptVersion: string | undefined): StompVersion {
  if (acceptVersion === undefined) return '1.0';
  const offered = acceptVersion.split(',').map((version) => version.trim());
  for (const version of ['1.2', '1.1', '1.0'] as const)
    if (offered.includes(version)) return version;
  throw new PerigeeError(
    'UNSUPPORTED_VERSION',
    `the client accepts ${acceptVersion || 'no version'}`,
  );
}

/**
 * The ERROR frame for `error`, in reply to `frame` if there is one: `message` says what went
 * wrong, `receipt-id` answers the frame's receipt (STOMP 1.2 §ERROR), `x-perigee-code` names the
 * error table's code and `x-perigee-retry` whether reconnecting can help.
 */
export function errorFrame(error: PerigeeError, frame?: Frame): Frame {
  const headers: Header[] = [
    ['message', error.message],
    ['content-type', 'text/plain'],
  ];
  const receipt = frame && getHeader(frame, 'receipt');
  if (receipt !== undefined) headers.push(['receipt-id', receipt]);
  // STOMP 1.2: a version mismatch ERROR "MUST" list the server's versions.
  if (error.code === 'UNSUPPORTED_VERSION') headers.push(['version', '1.0,1.1,1.2']);
  headers.push(['x-perigee-code', error.code]);
  headers.push(['x-perigee-retry', String(error.retryable)]);
  const body = frame
    ? `${error.message}\n(in reply to a ${frame.command} frame)\n`
    : `${error.message}\n`;
  return createFrame('ERROR', headers, body);
}
