/**
 * `npm run bench` / `perigee bench`. The full transport matrix arrives with the benchmark issue;
 * today the broker benchmark is the one scenario.
 */
export async function main(args: string[]): Promise<void> {
  const { main: brokerBench } = await import('./broker/main.js');
  await brokerBench(args);
}
