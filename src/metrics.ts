/**
 * Metrics in the Prometheus text exposition format (0.0.4), shared by the layers that have
 * figures to show: the gateway serves `/metrics`, the broker and applications add theirs.
 */

export interface MetricSample {
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface Metric {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters end in `_total`. */
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: readonly MetricSample[];
}

/** Label values escaped as the exposition format asks: backslash, double quote, newline. */
function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** The text of a scrape: HELP and TYPE before each family's samples. */
export function renderMetrics(metrics: readonly Metric[]): string {
  let text = '';
  for (const metric of metrics) {
    text += `# HELP ${metric.name} ${metric.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n`;
    text += `# TYPE ${metric.name} ${metric.type}\n`;
    for (const sample of metric.samples) {
      const labels = Object.entries(sample.labels ?? {});
      const labelText =
        labels.length === 0
          ? ''
          : `{${labels.map(([name, value]) => `${name}="${labelValue(value)}"`).join(',')}}`;
      text += `${metric.name}${labelText} ${formatValue(sample.value)}\n`;
    }
  }
  return text;
}

export const gauge = (name: string, help: string, samples: MetricSample[]): Metric => ({
  name,
  help,
  type: 'gauge',
  samples,
});
export const counter = (name: string, help: string, value: number): Metric => ({
  name,
  help,
  type: 'counter',
  samples: [{ value }],
});
