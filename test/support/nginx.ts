import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localTool } from './services.js';

const NGINX = '/usr/sbin/nginx';

/** Whether Debian's nginx is installed (apt-get install nginx); skips or fails per services.ts. */
export function nginxAvailable(): boolean {
  return localTool('nginx', existsSync(NGINX), `${NGINX} is not installed (apt-get install nginx)`);
}

export interface ReverseProxy {
  port: number;
  stop(): Promise<void>;
}

/**
 * nginx as a reverse proxy in front of `targetPort`, in a folder of its own. With `buffering`, it
 * holds responses back as buffering proxies do: proxy_buffering on, the X-Accel-Buffering: no that
 * the gateway sends ignored (DESIGN.md §8), and compression on. nginx 1.22 passes small chunks
 * through even with proxy_buffering on; it is the compressor that waits for a full buffer before
 * it sends anything, which is what stalls streams behind real-world proxies. It does not proxy
 * WebSocket upgrades, as many proxies do not.
 */
export async function startNginx(targetPort: number, buffering: boolean): Promise<ReverseProxy> {
  const directory = mkdtempSync(join(tmpdir(), 'perigee-nginx-'));
  mkdirSync(join(directory, 'tmp'));
  const port = await freePort();
  const temp = join(directory, 'tmp');
  writeFileSync(
    join(directory, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${join(directory, 'nginx.pid')};
error_log ${join(directory, 'error.log')} warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${temp};
  proxy_temp_path ${temp};
  fastcgi_temp_path ${temp};
  uwsgi_temp_path ${temp};
  scgi_temp_path ${temp};
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${targetPort};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 120s;
      proxy_buffering ${buffering ? 'on' : 'off'};
      ${buffering ? 'proxy_ignore_headers X-Accel-Buffering;\n      gzip on;\n      gzip_proxied any;\n      gzip_types *;\n      gzip_min_length 0;' : ''}
    }
  }
}
`,
  );
  const child: ChildProcess = spawn(
    NGINX,
    ['-p', directory, '-c', join(directory, 'nginx.conf'), '-e', join(directory, 'error.log')],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitForPort(port, () => {
    if (child.exitCode !== null) {
      const log = existsSync(join(directory, 'error.log'))
        ? readFileSync(join(directory, 'error.log'), 'utf8')
        : '';
      throw new Error(`nginx exited (${child.exitCode}): ${stderr}${log}`);
    }
  });
  return {
    port,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A port that was free a moment ago (nginx cannot take port 0 and report it back). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, check: () => void): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    check();
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx did not listen on ${port}`);
}
