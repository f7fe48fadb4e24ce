/**
 * Where the Hub is and who we are: the endpoint (option, else HF_ENDPOINT, else
 * https://huggingface.co) and the token (option, else HF_TOKEN, else the file the `hf` CLI
 * writes on `hf auth login`: $HF_TOKEN_PATH, else $HF_HOME/token, else
 * $XDG_CACHE_HOME/huggingface/token, else ~/.cache/huggingface/token) — the same lookup
 * order as huggingface_hub.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export type TokenSource = 'option' | 'HF_TOKEN' | 'file' | 'none';

export function hfTokenPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['HF_TOKEN_PATH']) return env['HF_TOKEN_PATH'];
  const home = env['HF_HOME'] || path.join(env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'token');
}

export function resolveHfToken(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { token: string | undefined; source: TokenSource } {
  if (explicit) return { token: explicit, source: 'option' };
  const fromEnv = env['HF_TOKEN']?.trim();
  if (fromEnv) return { token: fromEnv, source: 'HF_TOKEN' };
  try {
    const fromFile = fs.readFileSync(hfTokenPath(env), 'utf8').trim();
    if (fromFile) return { token: fromFile, source: 'file' };
  } catch {
    // no token file: anonymous
  }
  return { token: undefined, source: 'none' };
}

export function resolveHfEndpoint(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const ep = explicit || env['HF_ENDPOINT'] || DEFAULT_ENDPOINT;
  return ep.replace(/\/+$/, '');
}
