// Child process for test/unit/hashing.test.ts: hammers one hash cache directory at the same
// time as another copy of itself. Uses the compiled module (Node 20 cannot import .ts).
//
//   node hash-cache-writer.mjs <distIndexUrl> <cacheDir> <name> <count> <flushEvery> <mode>
//
// mode "append": set <count> keys (hash derived from the key), flushing every <flushEvery>
//                sets, re-opening the cache now and then to read what the other wrote.
// mode "compact": the same with maxEntries 300, so that flushes keep compacting (rename over the log).
// mode "pool": hash the file <cacheDir> with a HashPool and exit WITHOUT closing the pool
//              (the pool must not keep the process alive); prints the digest.
// Prints one JSON line with what it saw.
const [distIndexUrl, dir, name, countStr, flushEveryStr, mode] = process.argv.slice(2);
const mod = await import(distIndexUrl);

if (mode === 'pool') {
  const pool = new mod.HashPool();
  const r = await pool.hash(dir);
  process.stdout.write(`${JSON.stringify({ mode: pool.mode, hash: r.hash })}\n`);
} else {
  const { HashCache, hashBytes } = mod;
  const count = Number(countStr);
  const flushEvery = Number(flushEveryStr);
  const opts = mode === 'compact' ? { dir, maxEntries: 300 } : { dir };
  let cache = await HashCache.open(opts);
  let badSeen = cache.stats().badRecords;
  let reopened = 0;
  for (let i = 0; i < count; i++) {
    const key = `1:${i}:${i}:${i}000:/data/${name}/file ${i}`;
    cache.set(key, await hashBytes(key));
    if ((i + 1) % flushEvery === 0) {
      cache.flush();
      if ((i + 1) % (flushEvery * 5) === 0) {
        cache.close();
        cache = await HashCache.open(opts);
        badSeen = Math.max(badSeen, cache.stats().badRecords);
        reopened++;
      }
    }
  }
  cache.close();
  process.stdout.write(`${JSON.stringify({ name, badSeen, reopened, compactions: cache.stats().compactions })}\n`);
}
