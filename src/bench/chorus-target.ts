// Child-process entry for a Chorus bench target: boots it via startChorusTarget, says CHORUS_READY,
// and stops on SIGTERM. A separate process so the server's CPU and RSS are measured apart from the load.
import { pathToFileURL } from 'node:url';
import { startChorusTarget, type ChorusTargetOptions } from './target.ts';

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = JSON.parse(process.argv[2] ?? '{}') as ChorusTargetOptions;
  try {
    const node = await startChorusTarget(opts);
    process.stdout.write(`CHORUS_READY PIDS=${process.pid}\n`);
    const stop = async () => { await node.stop().catch(() => {}); process.exit(0); };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  } catch (e) {
    process.stderr.write((e as Error).message + '\n');
    process.exit(1);
  }
}
