// Worker threads start here: register the TypeScript loader for this thread, then run the scheduler.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';
register();
await import(workerData.entry);
