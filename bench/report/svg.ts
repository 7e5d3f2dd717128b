/** Hand-written SVG charts: lines on log or linear axes, and horizontal bars. No dependencies. */

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
  '#393b79',
  '#ad494a',
];
const DASHES = ['', '6 3', '2 3', '8 3 2 3'];

export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

function style(index: number): { color: string; dash: string } {
  return {
    color: PALETTE[index % PALETTE.length]!,
    dash: DASHES[Math.floor(index / PALETTE.length) % DASHES.length]!,
  };
}

function shortNumber(value: number): string {
  if (value >= 1e6) return `${+(value / 1e6).toPrecision(3)}M`;
  if (value >= 1e3) return `${+(value / 1e3).toPrecision(3)}k`;
  if (value >= 1) return `${+value.toPrecision(3)}`;
  return `${+value.toPrecision(2)}`;
}

interface Axis {
  log: boolean;
  min: number;
  max: number;
  ticks: number[];
}

function axis(values: number[], log: boolean, fromZero: boolean): Axis {
  const finite = values.filter((value) => Number.isFinite(value) && (!log || value > 0));
  let min = finite.length > 0 ? Math.min(...finite) : 1;
  let max = finite.length > 0 ? Math.max(...finite) : 10;
  if (log) {
    min = 10 ** Math.floor(Math.log10(min));
    max = 10 ** Math.ceil(Math.log10(max));
    if (max === min) max = min * 10;
    const ticks: number[] = [];
    for (let tick = min; tick <= max * 1.0001; tick *= 10) ticks.push(tick);
    return { log, min, max, ticks };
  }
  if (fromZero) {
    min = Math.min(0, min);
    max = Math.max(0, max);
  }
  if (max === min) max = min + 1;
  const step = niceStep((max - min) / 5);
  min = Math.floor(min / step) * step;
  max = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let tick = min; tick <= max + step / 2; tick += step) ticks.push(tick);
  return { log, min, max, ticks };
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

function project(value: number, scale: Axis, from: number, to: number): number {
  const position = scale.log
    ? (Math.log10(value) - Math.log10(scale.min)) / (Math.log10(scale.max) - Math.log10(scale.min))
    : (value - scale.min) / (scale.max - scale.min);
  return from + position * (to - from);
}

export interface Series {
  name: string;
  points: [number, number][];
  /** Draw markers on the points (few points) instead of a plain line. */
  markers?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** A step line (for CDFs). */
  steps?: boolean;
  yFormat?: (value: number) => string;
  xFormat?: (value: number) => string;
}

export function lineChart(series: readonly Series[], options: LineChartOptions): string {
  const width = 900;
  const legendRows = Math.ceil(series.length / 3);
  const plotTop = 40;
  const plotHeight = 340;
  const plotLeft = 80;
  const plotRight = width - 20;
  const height = plotTop + plotHeight + 60 + legendRows * 18;
  const xs = series.flatMap((item) => item.points.map(([x]) => x));
  const ys = series.flatMap((item) => item.points.map(([, y]) => y));
  const xAxis = axis(xs, options.xLog ?? false, false);
  const yAxis = axis(ys, options.yLog ?? false, true);
  const xFormat = options.xFormat ?? shortNumber;
  const yFormat = options.yFormat ?? shortNumber;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(options.title)}">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(options.title)}</text>`,
  );
  const bottom = plotTop + plotHeight;
  for (const tick of yAxis.ticks) {
    const y = project(tick, yAxis, bottom, plotTop);
    parts.push(
      `<line x1="${plotLeft}" x2="${plotRight}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${plotLeft - 6}" y="${y + 4}" text-anchor="end" font-size="11">${escapeXml(yFormat(tick))}</text>`,
    );
  }
  for (const tick of xAxis.ticks) {
    const x = project(tick, xAxis, plotLeft, plotRight);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${plotTop}" y2="${bottom}" stroke="#eee"/>`,
      `<text x="${x}" y="${bottom + 16}" text-anchor="middle" font-size="11">${escapeXml(xFormat(tick))}</text>`,
    );
  }
  parts.push(
    `<rect x="${plotLeft}" y="${plotTop}" width="${plotRight - plotLeft}" height="${plotHeight}" fill="none" stroke="#999"/>`,
    `<text x="${(plotLeft + plotRight) / 2}" y="${bottom + 36}" text-anchor="middle" font-size="12">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(18 ${plotTop + plotHeight / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(options.yLabel)}</text>`,
  );
  series.forEach((item, index) => {
    const { color, dash } = style(index);
    const points = item.points
      .filter(
        ([x, y]) =>
          Number.isFinite(x) &&
          Number.isFinite(y) &&
          (!xAxis.log || x > 0) &&
          (!yAxis.log || y > 0),
      )
      .map(
        ([x, y]) =>
          [project(x, xAxis, plotLeft, plotRight), project(y, yAxis, bottom, plotTop)] as const,
      );
    if (points.length === 0) return;
    let path = '';
    points.forEach(([x, y], at) => {
      if (at === 0) path += `M${x.toFixed(1)},${y.toFixed(1)}`;
      else if (options.steps) path += `H${x.toFixed(1)}V${y.toFixed(1)}`;
      else path += `L${x.toFixed(1)},${y.toFixed(1)}`;
    });
    parts.push(
      `<path d="${path}" fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}><title>${escapeXml(item.name)}</title></path>`,
    );
    if (item.markers) {
      for (const [x, y] of points)
        parts.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${color}"/>`);
    }
    const column = index % 3;
    const row = Math.floor(index / 3);
    const legendX = plotLeft + column * 270;
    const legendY = bottom + 56 + row * 18;
    parts.push(
      `<line x1="${legendX}" x2="${legendX + 24}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${color}" stroke-width="3"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      `<text x="${legendX + 30}" y="${legendY}" font-size="12">${escapeXml(item.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export interface Bar {
  label: string;
  value: number | undefined;
  /** Shown after the bar instead of the value (e.g. a reason it is missing). */
  note?: string;
  /** Bars of one group share a color. */
  group?: string;
}

export function barChart(
  bars: readonly Bar[],
  options: { title: string; unit: string; format?: (value: number) => string },
): string {
  const width = 900;
  // Labels are right-aligned against the bars: room for the longest (about 6.6 px a character).
  const longestLabel = Math.max(0, ...bars.map((bar) => bar.label.length));
  const labelWidth = Math.min(360, Math.max(230, Math.ceil(longestLabel * 6.6) + 12));
  const rowHeight = 20;
  const top = 40;
  const plotRight = width - 150;
  const height = top + bars.length * rowHeight + 40;
  const values = bars.flatMap((bar) => (bar.value === undefined ? [] : [bar.value]));
  const scale = axis(values, false, true);
  const format = options.format ?? shortNumber;
  const groups = [...new Set(bars.map((bar) => bar.group ?? ''))];
  const legend = groups
    .filter((group) => group !== '')
    .map((group, row) => {
      const y = top + row * 16;
      return (
        `<rect x="${plotRight + 20}" y="${y}" width="12" height="12" fill="${style(groups.indexOf(group)).color}"/>` +
        `<text x="${plotRight + 38}" y="${y + 10}" font-size="11">${escapeXml(group)}</text>`
      );
    });
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(options.title)}">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  for (const tick of scale.ticks) {
    const x = project(tick, scale, labelWidth, plotRight);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${top}" y2="${top + bars.length * rowHeight}" stroke="#eee"/>`,
      `<text x="${x}" y="${top + bars.length * rowHeight + 14}" text-anchor="middle" font-size="11">${escapeXml(format(tick))}</text>`,
    );
  }
  parts.push(
    `<text x="${(labelWidth + plotRight) / 2}" y="${height - 6}" text-anchor="middle" font-size="12">${escapeXml(options.unit)}</text>`,
  );
  parts.push(...legend);
  bars.forEach((bar, index) => {
    const y = top + index * rowHeight;
    const color = style(groups.indexOf(bar.group ?? '')).color;
    parts.push(
      `<text x="${labelWidth - 6}" y="${y + 14}" text-anchor="end" font-size="12">${escapeXml(bar.label)}</text>`,
    );
    if (bar.value === undefined) {
      parts.push(
        `<text x="${labelWidth + 4}" y="${y + 14}" font-size="11" fill="#a00">${escapeXml(bar.note ?? 'no figure')}</text>`,
      );
      return;
    }
    // Bars grow from zero, leftwards for a negative value (an RSS that shrank).
    const zero = project(0, scale, labelWidth, plotRight);
    const end = project(bar.value, scale, labelWidth, plotRight);
    const left = Math.min(zero, end);
    parts.push(
      `<rect x="${left.toFixed(1)}" y="${y + 3}" width="${Math.max(1, Math.abs(end - zero)).toFixed(1)}" height="${rowHeight - 6}" fill="${color}"><title>${escapeXml(`${bar.label}: ${format(bar.value)}`)}</title></rect>`,
      `<text x="${(Math.max(zero, end) + 4).toFixed(1)}" y="${y + 14}" font-size="11">${escapeXml(bar.note ?? format(bar.value))}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
