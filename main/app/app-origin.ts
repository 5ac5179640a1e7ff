// The app's page is served from its own scheme (deskgrid://app/), not file://, so that it has an
// origin of its own: the IPC gateway and the navigation guards recognize it, CSP 'self' means
// the app's files only, and nothing else on disk is reachable from the page.

import { isAbsolute, relative, resolve, sep } from 'node:path';

export const APP_SCHEME = 'deskgrid';
export const APP_HOST = 'app';
export const APP_START_URL = `${APP_SCHEME}://${APP_HOST}/index.html`;

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

export function isAppUrl(url: string): boolean {
  const parsed = parse(url);
  return parsed !== null && parsed.protocol === `${APP_SCHEME}:` && parsed.host === APP_HOST;
}

/** Links the page may open outside the app, in the user's browser: web pages only. */
export function isWebUrl(url: string): boolean {
  const parsed = parse(url);
  return parsed !== null && (parsed.protocol === 'https:' || parsed.protocol === 'http:');
}

/** The file under `root` that an app URL names, or null for anything outside it or malformed. */
export function rendererFile(root: string, url: string): string | null {
  if (!isAppUrl(url)) return null;
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  const file = resolve(root, `.${path === '/' ? '/index.html' : path}`);
  const inside = relative(resolve(root), file);
  if (inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) return null;
  return file;
}
