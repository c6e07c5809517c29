// Starts a real runtime (real worker threads, real LevelDB in a temp dir) for a test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRuntime, type RunningRuntime, type StartRuntimeOptions } from '../../src/runtime/node.ts';
import { nodeTree } from '../../supervisors/tree.ts';

export const FIXTURE_ACTORS = fileURLToPath(new URL('../fixtures/actors', import.meta.url));

export interface TestNode extends RunningRuntime {
  dir: string;
  logs: string[];
  /** Collects messages sent to a main-thread endpoint. */
  inbox(address: string): { messages: unknown[]; next(pred?: (m: any) => boolean, ms?: number): Promise<any> };
  /** Asks a fixture actor for its `report` (sent to `box`'s address) and waits for it. */
  report(address: string, box: ReturnType<TestNode['inbox']>, to: string): Promise<any>;
  cleanup(): Promise<void>;
}

export function tempDir(prefix = 'chorus-test-'): string { return mkdtempSync(join(tmpdir(), prefix)); }

export async function startTestNode(o: Partial<StartRuntimeOptions> & { dir?: string } = {}): Promise<TestNode> {
  const dir = o.dir ?? tempDir();
  const logs: string[] = [];
  const node = await startRuntime({
    dataDir: dir, schedulers: 2, actorDirs: [FIXTURE_ACTORS], tree: nodeTree, ...o,
    log: (level, text) => { logs.push(`[${level}] ${text}`); if (process.env.CHORUS_TEST_LOG) console.error(`[${level}] ${text}`); },
  });
  return {
    ...node, dir, logs,
    inbox(address) {
      const messages: unknown[] = [];
      const waiters: Array<{ pred: (m: any) => boolean; resolve: (m: any) => void }> = [];
      node.runtime.registerEndpoint(address, (m) => {
        const i = waiters.findIndex((w) => w.pred(m));
        if (i >= 0) { waiters.splice(i, 1)[0]!.resolve(m); return; }
        messages.push(m);
      });
      return {
        messages,
        next(pred = () => true, ms = 10_000) {
          const i = messages.findIndex(pred);
          if (i >= 0) return Promise.resolve(messages.splice(i, 1)[0]);
          return new Promise((resolve, reject) => {
            const w = { pred, resolve: (m: any) => { clearTimeout(t); resolve(m); } };
            const t = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); reject(new Error(`no matching message at ${address} within ${ms} ms`)); }, ms);
            waiters.push(w);
          });
        },
      };
    },
    report(address, box, to) {
      node.runtime.send(address, { type: 'report', to });
      return box.next((m) => m.type === 'report' && m.address === address);
    },
    async cleanup() { await node.stop(); if (!o.dir) rmSync(dir, { recursive: true, force: true }); },
  };
}

export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
