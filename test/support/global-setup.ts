import { buildClient } from '../../scripts/build-client.js';

/** The gateway serves /perigee.js from dist/client: build the bundles before any test runs. */
export default async function setup(): Promise<void> {
  await buildClient();
}
