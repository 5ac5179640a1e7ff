// Whether this process may use mDNS at all. DESKGRID_DISCOVERY=off turns it off everywhere: the
// test suite sets it, so that nothing it starts outside its own network namespaces ever
// multicasts on a real interface; tests inside namespaces turn it back on.

export function discoveryAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['DESKGRID_DISCOVERY'] !== 'off';
}
