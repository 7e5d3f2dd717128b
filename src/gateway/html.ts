/**
 * The template helper: what a page needs to talk to the gateway, written into its `<head>`. It
 * does the job of the talk's context processor, template tag and `<head>` snippet in one call.
 * Settings travel as a JSON data block, not inline script, so pages can keep a strict
 * Content-Security-Policy (`script-src 'self'`).
 */
export interface ClientScriptOptions {
  /** The gateway's path prefix. */
  prefix?: string;
  /** Client options the page's own script reads (`transports`, `streamingTimeout`, …). */
  settings?: Readonly<Record<string, unknown>>;
  /** Load the ES module (/perigee.mjs) instead of the global script. */
  module?: boolean;
}

export function clientScriptTags(options: ClientScriptOptions = {}): string {
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  const settings = { url: prefix || '/', ...options.settings };
  const script = options.module
    ? `<script type="module" src="${escapeAttribute(prefix)}/perigee.mjs"></script>`
    : `<script src="${escapeAttribute(prefix)}/perigee.js"></script>`;
  return `${script}\n<script type="application/json" id="perigee-settings">${jsonForHtml(settings)}</script>`;
}

/** JSON that is safe inside a `<script>` element: no `</script>`, no `<!--`, no U+2028/9. */
export function jsonForHtml(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeAttribute(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
