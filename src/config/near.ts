// "Did you mean": the known word nearest to a mistyped one, for config keys and module names alike.

/** The candidate within a few edits of `word` (about a third of its length), the nearest first. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  let best: { k: string; d: number } | undefined;
  for (const k of candidates) {
    const d = editDistance(word.toLowerCase(), k);
    if (d <= Math.max(1, Math.floor(k.length / 3)) && (!best || d < best.d)) best = { k, d };
  }
  return best?.k;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
