// Where the probe actors (test/fixtures/core/actors/probe) report what they receive: the test core
// (core.ts) listens here. A module of its own, so the probe's bundle and the test share one instance.
export type ProbeSink = (self: string, from: string | undefined, message: { type: string } & Record<string, unknown>) => void;

let sink: ProbeSink = () => undefined;
export function listen(s: ProbeSink): void { sink = s; }
export function report(...args: Parameters<ProbeSink>): void { sink(...args); }
