/**
 * The runtime promise (issue 17): bucketsync runs on Node ≥ 22.12 (built, tested and measured on
 * Node 24). Started by an older Node (the system's Node 20), bin/bucketsync hands over to the
 * Node 24 that `npm ci` installed from the npm registry: same arguments, same stdio, same exit
 * code, signals passed on; without one it says so in one line and exits 2. On the Node the
 * suite runs on (24, and 22 in CI), no command prints a warning or deprecation notice.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, ROOT, cli, readTree, tempDir, writeTree } from '../support/cli.js';
import { createTestBucket, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';

const supported = (v: string): boolean => {
  const [major = 0, minor = 0] = v.replace(/^v/, '').split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 12);
};

/** A Node older than 22.12 on this machine (Debian's Node 20 at /usr/bin/node in CI), if any. */
function findOldNode(): { bin: string; version: string } | undefined {
  const dirs = ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(path.delimiter)];
  for (const dir of dirs) {
    const bin = path.join(dir, 'node');
    if (!dir || !fs.existsSync(bin)) continue;
    const r = spawnSync(bin, ['-p', 'process.version'], { encoding: 'utf8' });
    const version = r.stdout?.trim();
    if (r.status === 0 && version && !supported(version)) return { bin: fs.realpathSync(bin), version };
  }
  return undefined;
}

const oldNode = findOldNode();
if (!oldNode) process.stderr.write('runtime tests: no Node older than 22.12 on this machine, the hand-over tests are skipped\n');
const endpoint = s3TestEndpoint();
const WARNING = /warning|deprecat|experimental/i;

let work: string;
beforeEach(() => {
  work = tempDir('bucketsync-runtime-');
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

/** Runs `node bin/bucketsync ARGS`, recording which Node each process and thread ran on. */
function run(node: string, args: string[], opts: { env?: Record<string, string>; bin?: string } = {}) {
  const log = path.join(work, 'versions.log');
  const hook = path.join(work, 'record-version.mjs');
  fs.writeFileSync(
    hook,
    `import { appendFileSync } from 'node:fs';\nimport { isMainThread } from 'node:worker_threads';\nappendFileSync(${JSON.stringify(log)}, \`\${process.version} \${isMainThread ? 'main' : 'worker'} \${process.pid}\\n\`);\n`,
  );
  const child = spawn(node, [opts.bin ?? BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), NODE_OPTIONS: `--import=${hook}`, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; versions: string[] }>((resolve) =>
    child.on('close', (code, signal) => {
      const versions = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
      resolve({ code, signal, stdout, stderr, versions });
    }),
  );
  return { child, done, stderrSoFar: () => stderr };
}

describe.skipIf(!oldNode)(`started by an older Node (${oldNode?.version ?? 'none here'})`, () => {
  it('hands over to Node ≥ 22.12: the sync is done there, with no warning, and the exit code comes back', async () => {
    writeTree(path.join(work, 'src'), { 'a.txt': 'a', 'd/b.txt': 'bb' });
    const r = await run(oldNode!.bin, ['sync', path.join(work, 'src'), path.join(work, 'dst'), '--delete', '-v', '--no-progress']).done;
    expect(r.code).toBe(0);
    expect(readTree(path.join(work, 'dst'))).toEqual({ 'a.txt': 'a', 'd/b.txt': 'bb' });
    expect(r.stderr).not.toMatch(WARNING);
    // The launcher itself ran on the old Node; the CLI (main thread and workers) only on a supported one.
    const mains = r.versions.filter((l) => l.includes(' main '));
    expect(mains[0]).toContain(oldNode!.version);
    expect(mains.length).toBe(2);
    expect(supported(mains[1]!.split(' ')[0]!)).toBe(true);
    for (const l of r.versions.slice(1)) expect(supported(l.split(' ')[0]!), l).toBe(true);
  });

  it('bad input: the one-line error and exit 2 pass through the hand-over, no stack trace', async () => {
    const missing = path.join(work, 'no-such-dir');
    const r = await run(oldNode!.bin, ['sync', missing, path.join(work, 'dst')]).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(path.join(work, 'dst'))).toBe(false);
  });

  it('a SIGTERM sent to the launcher reaches the sync: it stops gracefully and exits 130', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) files[`d${i % 30}/f${i}.txt`] = `content ${i}`;
    writeTree(path.join(work, 'src'), files);
    const p = run(oldNode!.bin, ['sync', path.join(work, 'src'), path.join(work, 'dst'), '-v', '--no-progress', '--transfers', '1']);
    const started = Date.now();
    while (!/Uploading: /.test(p.stderrSoFar()) && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 20));
    p.child.kill('SIGTERM');
    const r = await p.done;
    expect(r.stderr).toContain('Interrupted');
    expect(r.code).toBe(130);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('with no Node ≥ 22.12 to hand over to: one clear line naming both Nodes, exit 2', async () => {
    const pkg = path.join(work, 'pkg');
    fs.mkdirSync(path.join(pkg, 'bin'), { recursive: true });
    fs.copyFileSync(BIN, path.join(pkg, 'bin', 'bucketsync'));
    fs.writeFileSync(path.join(pkg, 'package.json'), '{"type":"module"}');
    const r = await run(oldNode!.bin, ['--version'], { bin: path.join(pkg, 'bin', 'bucketsync') }).done;
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Error: bucketsync needs Node ≥ 22\.12 \(this is Node /);
    expect(r.stderr).toContain(oldNode!.version.slice(1));
    expect(r.stderr.trim().split('\n')).toHaveLength(2);
  });

  it.skipIf(!endpoint)('S3 commands through the hand-over (the AWS SDK loaded, no region set) print no warning', async () => {
    const bucket = await createTestBucket('runtime');
    writeTree(path.join(work, 'src'), { 'a.txt': 'a', 'big.bin': Buffer.alloc(9 * 1024 * 1024, 7) });
    // No region in the environment: the region is then read through the SDK's own resolver
    // (an S3Client is built).
    const env = { ...s3TestEnv(), NODE_OPTIONS: '', AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_CONFIG_FILE: path.join(work, 'no-aws-config') };
    for (const args of [
      ['sync', path.join(work, 'src'), `s3://${bucket}/p`, '--delete', '-q'],
      ['ls', `s3://${bucket}/p`],
      ['rm', '-R', '--yes', `s3://${bucket}/p`],
      ['buckets', 'delete', `s3://${bucket}`, '--yes'],
    ]) {
      const r = await run(oldNode!.bin, args, { env }).done;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stderr, args.join(' ')).not.toMatch(WARNING);
    }
  });
});

describe(`on the Node the suite runs on (${process.version}), with --trace-warnings --trace-deprecation`, () => {
  const env = { NODE_OPTIONS: '--trace-warnings --trace-deprecation' };

  it('local commands print no warning', async () => {
    writeTree(path.join(work, 'src'), { 'a.txt': 'a', 'd/b.txt': 'bb' });
    for (const args of [
      ['sync', path.join(work, 'src'), path.join(work, 'dst'), '--delete', '-v', '--no-progress'],
      ['sync', path.join(work, 'src'), path.join(work, 'dst'), '--delete', '--plan', path.join(work, 'plan.jsonl')],
      ['plan', 'show', path.join(work, 'plan.jsonl')],
      ['ls', path.join(work, 'dst')],
      ['--help'],
    ]) {
      const r = await cli(args, { env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stderr, args.join(' ')).not.toMatch(WARNING);
    }
  });

  it.skipIf(!endpoint)('S3 commands (the AWS SDK loaded: multipart upload, bucket admin) print no warning', async () => {
    const bucket = await createTestBucket('runtime');
    writeTree(path.join(work, 'src'), { 'a.txt': 'a', 'big.bin': Buffer.alloc(9 * 1024 * 1024, 7) });
    for (const args of [
      ['sync', path.join(work, 'src'), `s3://${bucket}/p`, '--delete', '-q'],
      ['cp', path.join(work, 'src', 'big.bin'), `s3://${bucket}/p/big2.bin`],
      ['sync', `s3://${bucket}/p`, path.join(work, 'back'), '-q'],
      ['ls', `s3://${bucket}/p`],
      ['ls', `s3://${bucket}/p`, '--region', ''],
      ['rm', '-R', '--yes', `s3://${bucket}/p`],
      ['buckets', 'delete', `s3://${bucket}`, '--yes'],
    ]) {
      const noRegion = args.includes('--region');
      const r = await cli(
        args.filter((a, i) => a !== '--region' && args[i - 1] !== '--region'),
        {
          env: { ...s3TestEnv(), ...env, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...(noRegion ? { AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_CONFIG_FILE: path.join(work, 'no-aws-config') } : {}) },
          timeoutMs: 120_000,
        },
      );
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stderr, args.join(' ')).not.toMatch(WARNING);
    }
  });
});
