// The node identity: made once, reloaded unchanged, private on disk, usable for mutual TLS 1.3
// with the id equal to the SHA-256 of the certificate each side sees; a data folder copied to
// another machine gets a new identity with a warning; damaged files are an error.

import { X509Certificate, createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import {
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import {
  certificateId,
  loadIdentity,
  machineFingerprint,
  parseIoregPlatformUuid,
  parseRegMachineGuid,
  shortNodeId,
  type NodeIdentity,
} from '../../../main/engine/identity/node-identity.js';
import { saveSettings } from '../../../main/engine/settings.js';
import { useTempFolder } from '../../support/temp-folder.js';

const tmp = useTempFolder();
const posix = process.platform !== 'win32';
const MACHINE_A = { DESKGRID_MACHINE_ID: 'machine-a' };
const MACHINE_B = { DESKGRID_MACHINE_ID: 'machine-b' };

function home(name = 'home'): string {
  return join(tmp.root, name);
}

function identityDir(name = 'home'): string {
  return join(home(name), 'identity');
}

function load(name = 'home', env: NodeJS.ProcessEnv = MACHINE_A): NodeIdentity {
  const { identity, warning } = loadIdentity(home(name), env);
  expect(warning).toBeNull();
  return identity;
}

function thrown(action: () => unknown): DeskGridError {
  try {
    action();
  } catch (error) {
    if (error instanceof DeskGridError) return error;
    throw error;
  }
  throw new Error('nothing was thrown');
}

describe('loadIdentity: first start', () => {
  it('makes a key and a certificate whose SHA-256 is the id, and keeps them private', () => {
    const started = performance.now();
    const identity = load();
    const ms = performance.now() - started;
    // Measured, not asserted: the report quotes it.
    console.log(`first-start identity creation: ${ms.toFixed(0)} ms`);

    expect(identity.id).toMatch(/^[0-9a-f]{64}$/);
    expect(identity.shortId).toBe(`${identity.id.slice(0, 4)}-${identity.id.slice(4, 8)}`);
    expect(shortNodeId(identity.id)).toBe(identity.shortId);
    expect(identity.name).toBe(hostname());

    const dir = identityDir();
    expect(readdirSync(dir).sort()).toEqual(['cert.pem', 'identity.json', 'key.pem']);
    expect(readdirSync(home())).toEqual(['identity']);
    expect(readFileSync(join(dir, 'cert.pem'), 'utf8')).toBe(identity.certPem);
    expect(readFileSync(join(dir, 'key.pem'), 'utf8')).toBe(identity.keyPem);
    expect(JSON.parse(readFileSync(join(dir, 'identity.json'), 'utf8'))).toEqual({
      id: identity.id,
      name: hostname(),
      machine: machineFingerprint(MACHINE_A),
    });
    if (posix) {
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
    }

    const cert = new X509Certificate(identity.certPem);
    expect(createHash('sha256').update(cert.raw).digest('hex')).toBe(identity.id);
    expect(certificateId(cert.raw)).toBe(identity.id);
    expect(identity.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('makes a certificate that node:crypto accepts: self-signed, 20 years, for TLS both ways', () => {
    const identity = load();
    const cert = new X509Certificate(identity.certPem);
    const key = createPrivateKey(identity.keyPem);
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(cert.verify(createPublicKey(key))).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyType).toBe('rsa');
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(cert.subject).toMatch(/^CN=deskgrid-[0-9a-f]{8}$/);
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(cert.serialNumber).toMatch(/^[4-7][0-9A-F]{31}$/);
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    expect(from).toBeLessThan(Date.now() - 6 * 24 * 3600 * 1000);
    expect((to - Date.now()) / (365.25 * 24 * 3600 * 1000)).toBeCloseTo(20, 1);
    expect(cert.toString()).toBe(identity.certPem.replace(/\r\n/g, '\n'));
  });

  it('gives every node its own identity', () => {
    const a = load('a');
    const b = load('b');
    expect(a.id).not.toBe(b.id);
    expect(a.keyPem).not.toBe(b.keyPem);
    expect(new X509Certificate(a.certPem).serialNumber).not.toBe(new X509Certificate(b.certPem).serialNumber);
  });

  it('takes its name from the settings when one is saved', () => {
    saveSettings(home(), { name: 'Reception PC' });
    expect(load().name).toBe('Reception PC');
  });
});

describe('loadIdentity: later starts', () => {
  it('reloads the same identity', () => {
    const first = load();
    const again = load();
    expect(again).toEqual(first);
    saveSettings(home(), { name: 'renamed' });
    expect(load()).toEqual({ ...first, name: 'renamed' });
  });

  it('makes a private key copied with loose permissions private again', () => {
    if (!posix) return;
    const first = load();
    const keyFile = join(identityDir(), 'key.pem');
    // Simulates a restore from a backup that did not keep modes.
    rmSync(keyFile);
    writeFileSync(keyFile, first.keyPem, { mode: 0o644 });
    expect(load().id).toBe(first.id);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
  });

  it('makes a new identity, with a warning, when the data folder was copied from another machine', () => {
    const original = load('home', MACHINE_A);
    const { identity, warning } = loadIdentity(home(), MACHINE_B);
    expect(identity.id).not.toBe(original.id);
    expect(identity.keyPem).not.toBe(original.keyPem);
    expect(warning).toMatch(/^this data folder was copied from another computer/);
    expect(warning).toContain(identity.shortId);

    const aside = readdirSync(home()).filter((name) => name.startsWith('identity.cloned-'));
    expect(aside).toHaveLength(1);
    const asideDir = join(home(), aside[0] ?? '');
    expect(warning).toContain(asideDir);
    expect(readFileSync(join(asideDir, 'cert.pem'), 'utf8')).toBe(original.certPem);
    expect(readFileSync(join(asideDir, 'key.pem'), 'utf8')).toBe(original.keyPem);

    // The copy keeps its new identity from then on.
    expect(load('home', MACHINE_B)).toEqual(identity);
  });

  it('uses the real machine fingerprint when DESKGRID_MACHINE_ID is not set', () => {
    expect(machineFingerprint({})).toMatch(/^[0-9a-f]{32}$/);
    expect(machineFingerprint({})).toBe(machineFingerprint({}));
    expect(machineFingerprint({ DESKGRID_MACHINE_ID: '' })).toBe(machineFingerprint({}));
    expect(machineFingerprint(MACHINE_A)).not.toBe(machineFingerprint({}));
    expect(machineFingerprint(MACHINE_A)).not.toBe(machineFingerprint(MACHINE_B));
    const identity = load('home', {});
    expect(load('home', {})).toEqual(identity);
  });

  it('reads the machine ids of macOS and Windows from their tools', () => {
    const ioreg = `+-o J314sAP  <class IOPlatformExpertDevice, id 0x100000110, registered, matched, active, busy 0 (40 ms), retain 37>
    {
      "IOPlatformSerialNumber" = "C02XXXXXXX"
      "IOPlatformUUID" = "5E3A1C8B-2D4F-4B6A-9C1E-7F8D9A0B1C2D"
    }`;
    expect(parseIoregPlatformUuid(ioreg)).toBe('5E3A1C8B-2D4F-4B6A-9C1E-7F8D9A0B1C2D');
    expect(parseIoregPlatformUuid('nothing here')).toBeNull();
    const reg = `\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Cryptography\r\n    MachineGuid    REG_SZ    0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\r\n\r\n`;
    expect(parseRegMachineGuid(reg)).toBe('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0');
    expect(parseRegMachineGuid('ERROR: The system was unable to find the specified registry key')).toBeNull();
  });
});

describe('loadIdentity: damaged files', () => {
  function expectDamaged(detail: RegExp): void {
    const error = thrown(() => loadIdentity(home(), MACHINE_A));
    expect(error.code).toBe(ErrorCode.IdentityFiles);
    expect(error.message).toContain(`this node's identity in ${identityDir()} is damaged`);
    expect(error.message).toMatch(detail);
    expect(error.message).not.toContain('\n');
  }

  it('refuses a certificate that is not one', () => {
    load();
    writeFileSync(join(identityDir(), 'cert.pem'), 'garbage');
    expectDamaged(/cert\.pem does not hold a certificate/);
  });

  it('refuses a key that is not one', () => {
    load();
    writeFileSync(
      join(identityDir(), 'key.pem'),
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    );
    expectDamaged(/key\.pem does not hold a private key/);
  });

  it('refuses a key that belongs to another certificate', () => {
    load();
    load('other');
    copyFileSync(join(identityDir('other'), 'key.pem'), join(identityDir(), 'key.pem'));
    expectDamaged(/key\.pem does not belong to cert\.pem/);
  });

  it('refuses a certificate and key that are not the recorded id', () => {
    load();
    load('other');
    copyFileSync(join(identityDir('other'), 'key.pem'), join(identityDir(), 'key.pem'));
    copyFileSync(join(identityDir('other'), 'cert.pem'), join(identityDir(), 'cert.pem'));
    expectDamaged(/identity\.json names another certificate than cert\.pem/);
  });

  it('refuses a broken or missing identity.json, and missing files', () => {
    load();
    const info = join(identityDir(), 'identity.json');
    const saved = readFileSync(info, 'utf8');
    writeFileSync(info, '{"id": ');
    expectDamaged(/identity\.json is not valid JSON/);
    writeFileSync(info, JSON.stringify({ id: 'abc', name: 'x', machine: 'y' }));
    expectDamaged(/identity\.json is not valid \(id must be 64 lowercase hex characters\)/);
    rmSync(info);
    expectDamaged(/identity\.json is missing/);
    writeFileSync(info, saved);
    rmSync(join(identityDir(), 'key.pem'));
    expectDamaged(/key\.pem is missing/);
    // Never silently replaced: the folder is left as it was.
    expect(existsSync(join(identityDir(), 'key.pem'))).toBe(false);
  });
});

describe('mutual TLS with node identities', () => {
  it('handshakes with TLS 1.3, each side seeing the other id as the SHA-256 of its certificate', async () => {
    const server = load('server');
    const client = load('client');
    const seen = await handshake(server, client);
    expect(seen.serverProtocol).toBe('TLSv1.3');
    expect(seen.clientProtocol).toBe('TLSv1.3');
    expect(certificateId(seen.serverSawRaw)).toBe(client.id);
    expect(certificateId(seen.clientSawRaw)).toBe(server.id);
  });
});

describe('pinned TLS with node identities', () => {
  // keyUsage has no keyCertSign (these are not CAs), so OpenSSL's checkIssued(self) is false;
  // trusting the exact certificate through `ca` must still work, and a wrong one must not.
  it('accepts the pinned certificate on both sides and rejects another one', async () => {
    const server = load('server');
    const client = load('client');
    const stranger = load('stranger');
    expect(await pinnedHandshake(server, client, server.certPem)).toBe('authorized');
    expect(await pinnedHandshake(server, client, stranger.certPem)).toMatch(/self-signed certificate/);
  });
});

/** Both sides pin: the server trusts only `client`; the client trusts only `clientPins`. */
async function pinnedHandshake(
  serverIdentity: NodeIdentity,
  clientIdentity: NodeIdentity,
  clientPins: string,
): Promise<string> {
  const server = createServer({
    cert: serverIdentity.certPem,
    key: serverIdentity.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
    ca: [clientIdentity.certPem],
  });
  server.on('tlsClientError', () => undefined);
  server.on('secureConnection', (socket) => socket.end());
  try {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const socket = connect({
      host: '127.0.0.1',
      port,
      cert: clientIdentity.certPem,
      key: clientIdentity.keyPem,
      ca: [clientPins],
      rejectUnauthorized: true,
      checkServerIdentity: () => undefined,
    });
    return await new Promise<string>((resolve) => {
      socket.once('secureConnect', () => {
        resolve(socket.authorized ? 'authorized' : String(socket.authorizationError));
        socket.destroy();
      });
      socket.once('error', (error: Error) => resolve(error.message));
    });
  } finally {
    server.close();
  }
}

interface Seen {
  serverProtocol: string | null;
  clientProtocol: string | null;
  serverSawRaw: Buffer;
  clientSawRaw: Buffer;
}

async function handshake(serverIdentity: NodeIdentity, clientIdentity: NodeIdentity): Promise<Seen> {
  const server = createServer({
    cert: serverIdentity.certPem,
    key: serverIdentity.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  try {
    const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const clientSocket = connect({
      host: '127.0.0.1',
      port,
      cert: clientIdentity.certPem,
      key: clientIdentity.keyPem,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    const [[serverSocket]] = await Promise.all([accepted, once(clientSocket, 'secureConnect')]);
    try {
      return {
        serverProtocol: serverSocket.getProtocol(),
        clientProtocol: clientSocket.getProtocol(),
        serverSawRaw: serverSocket.getPeerCertificate(true).raw,
        clientSawRaw: clientSocket.getPeerCertificate(true).raw,
      };
    } finally {
      clientSocket.destroy();
      serverSocket.destroy();
    }
  } finally {
    server.close();
  }
}
