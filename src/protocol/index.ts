/**
 * The STOMP 1.0/1.1/1.2 codec. Pure and isomorphic: Uint8Array in and out, no Node imports, so
 * that the broker, the gateway and the browser client share it.
 */
export {
  createFrame,
  EMPTY_BODY,
  getHeader,
  headersAreEscaped,
  SUPPORTED_VERSIONS,
  type Frame,
  type Header,
  type StompVersion,
} from './frame.js';
export { escapeHeader, unescapeHeader } from './escape.js';
export { errorFrame, negotiateVersion } from './negotiate.js';
export {
  DEFAULT_PARSER_LIMITS,
  FrameParser,
  type FrameParserOptions,
  type ParserLimits,
} from './parser.js';
export {
  encodeFrame,
  encodeFrameText,
  encodeHeaderLines,
  type PreEncodedFrame,
} from './serializer.js';
export { MessageDelivery, OwnHeaders, SharedMessage, type TextForm } from './message-delivery.js';
export {
  heartBeatDeadline,
  negotiateHeartBeat,
  parseHeartBeat,
  type HeartBeat,
} from './heartbeat.js';
export { concatBytes, decodeUtf8, encodeUtf8, isValidUtf8 } from './utf8.js';
export {
  compilePattern,
  isWildcardPattern,
  matchesPattern,
  validateDestinationName,
  validatePattern,
  type PatternMatcher,
} from './destination.js';
