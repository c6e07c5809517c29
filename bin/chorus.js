#!/usr/bin/env node
// Entry point: registers the TypeScript loader (tsx) so the node runs straight from source — which is
// also what lets `chorus reload` pick up edited actor modules without a build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv.slice(2));
