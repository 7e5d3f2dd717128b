/** bench/results/<timestamp>.html: the plots (hand-written SVG) and the same tables as BENCHMARKS.md. */
import type { BenchResults, ConfigurationResult } from '../results.js';
import {
  count,
  failureText,
  measured,
  memoryRowLabel,
  memoryRows,
  noMemoryReason,
} from './format.js';
import { renderMarkdownSection } from './markdown.js';
import { barChart, escapeXml, lineChart, type Bar, type Series } from './svg.js';

function byTarget(
  configurations: readonly ConfigurationResult[],
): Map<string, ConfigurationResult[]> {
  const out = new Map<string, ConfigurationResult[]>();
  for (const configuration of configurations) {
    const list = out.get(configuration.target) ?? [];
    list.push(configuration);
    out.set(configuration.target, list);
  }
  return out;
}

function throughputVsClients(results: BenchResults): string | undefined {
  const series: Series[] = [];
  for (const [target, list] of byTarget(measured(results, 'fanout'))) {
    const points = list
      .filter((c) => c.summary.deliveriesPerSecond)
      .map((c): [number, number] => [c.clients, c.summary.deliveriesPerSecond!.median])
      .sort((a, b) => a[0] - b[0]);
    if (points.length > 0) series.push({ name: target, points, markers: true });
  }
  if (series.length === 0) return undefined;
  return lineChart(series, {
    title: 'Fan-out: max deliveries/s vs subscribers (median of runs)',
    xLabel: 'subscribers on one topic (N, log scale)',
    yLabel: 'deliveries/s (log scale)',
    xLog: true,
    yLog: true,
    xFormat: count,
  });
}

/** CDF points from a merged histogram: (latency ms, fraction at or below). */
function cdf(histogram: [number, number][]): [number, number][] {
  const total = histogram.reduce((sum, [, n]) => sum + n, 0);
  let seen = 0;
  return histogram.map(([upper, n]) => {
    seen += n;
    return [upper, seen / total];
  });
}

function latencyCdf(
  configurations: readonly ConfigurationResult[],
  title: string,
): string | undefined {
  const series: Series[] = configurations
    .filter((c) => c.summary.latencyHistogram && c.summary.latencyHistogram.length > 0)
    .map((c) => ({ name: c.target, points: cdf(c.summary.latencyHistogram!) }));
  if (series.length === 0) return undefined;
  return lineChart(series, {
    title,
    xLabel:
      'latency, ms (log scale): publish to receipt by the subscriber, all deliveries of all runs',
    yLabel: 'fraction of deliveries',
    xLog: true,
    steps: true,
    yFormat: (value) => value.toFixed(1),
  });
}

function memoryBars(results: BenchResults): string | undefined {
  const bars: Bar[] = [];
  for (const c of memoryRows(results)) {
    const value = c.summary.rssPerConnection?.median;
    const bar: Bar = {
      label: `${memoryRowLabel(c)} N=${count(c.clients)}`,
      value: value === undefined ? undefined : value / 1024,
      group: `N=${c.clients}`,
    };
    if (value === undefined) bar.note = noMemoryReason(c).slice(0, 60);
    bars.push(bar);
  }
  if (bars.length === 0) return undefined;
  return barChart(bars, {
    title: 'Memory per idle connection: RSS delta / N (median)',
    unit: 'KB of RSS per connection (colors: N)',
    format: (value) => value.toFixed(1),
  });
}

function bytesBars(results: BenchResults): string | undefined {
  const configurations =
    measured(results, 'transports').length > 0
      ? measured(results, 'transports')
      : measured(results, 'fanout');
  const bars: Bar[] = configurations.map((c) => {
    const value = c.summary.equalLoadWireBytesPerDelivery?.median;
    const bar: Bar = { label: `${c.target} N=${count(c.clients)}`, value, group: c.transport };
    if (value === undefined)
      bar.note = c.notRun !== undefined ? 'not run' : (failureText(c) ?? 'no figure').slice(0, 60);
    return bar;
  });
  if (bars.length === 0) return undefined;
  return barChart(bars, {
    title: 'Wire bytes per delivered message, both directions, at the same load',
    unit: 'bytes per delivery (headers and framing included; colors: transport)',
    format: (value) => count(value),
  });
}

/** A small Markdown subset (headings, tables, lists, paragraphs, `code`, **bold**) to HTML. */
function markdownToHtml(markdown: string): string {
  const inline = (text: string): string =>
    escapeXml(text)
      .replace(/`([^`]+)`/g, '<code>$1</code>')
      .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
  const out: string[] = [];
  const lines = markdown.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (line.startsWith('#### ')) {
      out.push(`<h3>${inline(line.slice(5))}</h3>`);
    } else if (line.startsWith('### ')) {
      // The section's own heading: the page already has "Tables" above it.
      continue;
    } else if (line.startsWith('|')) {
      const rows: string[][] = [];
      while (index < lines.length && lines[index]!.startsWith('|')) {
        rows.push(
          lines[index]!.slice(1, -1)
            .split(/(?<!\\)\|/)
            .map((cell) => cell.trim().replaceAll('\\|', '|')),
        );
        index++;
      }
      index--;
      const [header, , ...body] = rows;
      out.push(
        '<table>',
        `<tr>${(header ?? []).map((cell) => `<th>${inline(cell)}</th>`).join('')}</tr>`,
        ...body.map((row) => `<tr>${row.map((cell) => `<td>${inline(cell)}</td>`).join('')}</tr>`),
        '</table>',
      );
    } else if (line.startsWith('- ')) {
      out.push('<ul>');
      while (index < lines.length && lines[index]!.startsWith('- ')) {
        out.push(`<li>${inline(lines[index]!.slice(2))}</li>`);
        index++;
      }
      index--;
      out.push('</ul>');
    } else if (line.trim() !== '') {
      out.push(`<p>${inline(line)}</p>`);
    }
  }
  return out.join('\n');
}

export function renderHtml(results: BenchResults, jsonName: string): string {
  const fanout = measured(results, 'fanout');
  const smallest = Math.min(...fanout.map((c) => c.clients));
  const charts = [
    throughputVsClients(results),
    latencyCdf(
      fanout.filter((c) => c.clients === smallest),
      `Latency CDF per peer: fan-out at N=${count(smallest)}, same load for all`,
    ),
    latencyCdf(
      measured(results, 'transports'),
      'Latency CDF per transport: the talk’s comparison, same load for all',
    ),
    memoryBars(results),
    bytesBars(results),
  ].filter((chart): chart is string => chart !== undefined);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Perigee benchmark: ${escapeXml(results.startedAt)}</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
  h1 { font-size: 1.6rem; } h2 { margin-top: 2rem; } h3 { margin-top: 1.6rem; }
  table { border-collapse: collapse; margin: 0.6rem 0; font-size: 12.5px; }
  th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; vertical-align: top; }
  th { background: #f3f3f3; }
  td:nth-child(2), th:nth-child(2) { text-align: left; }
  code { background: #f3f3f3; padding: 0 3px; }
  figure { margin: 1.5rem 0; }
  svg { max-width: 100%; height: auto; background: #fff; }
</style>
</head>
<body>
<h1>Does it scale? Perigee benchmark</h1>
<p>Raw figures: <a href="${escapeXml(jsonName)}">${escapeXml(jsonName)}</a></p>
<h2>Plots</h2>
${charts.map((chart) => `<figure>${chart}</figure>`).join('\n')}
<h2>Tables</h2>
${markdownToHtml(renderMarkdownSection(results, jsonName))}
</body>
</html>
`;
}
