// This node's identity: an RSA key and a self-signed certificate made on first start and kept in
// <home>/identity/; the node id is the SHA-256 of the certificate, so peers can pin it in TLS.
// A data folder copied to another machine is detected by a machine fingerprint and gets a fresh
// identity, so that two computers never pass for the same node.

import { execFileSync } from 'node:child_process';
import {
  X509Certificate,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type forge from 'node-forge';
import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { loadSettings } from '../settings.js';

export const IDENTITY_DIR = 'identity';
const KEY_FILE = 'key.pem';
const CERT_FILE = 'cert.pem';
const INFO_FILE = 'identity.json';

export interface NodeIdentity {
  /** 64 lowercase hex: the SHA-256 of the certificate's DER bytes. */
  id: string;
  /** The first 8 characters of the id, grouped for reading: "3f9a-1c2e". */
  shortId: string;
  /** A friendly name: the saved settings' name, else the host name. */
  name: string;
  certPem: string;
  keyPem: string;
}

export interface LoadedIdentity {
  identity: NodeIdentity;
  /** Set when the data folder came from another machine and a new identity was made. */
  warning: string | null;
}

const InfoSchema = v.object({
  id: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'id must be 64 lowercase hex characters')),
  name: v.string(),
  machine: v.pipe(v.string(), v.minLength(1)),
});
type IdentityInfo = v.InferOutput<typeof InfoSchema>;

interface StoredIdentity {
  info: IdentityInfo;
  certPem: string;
  keyPem: string;
}

/**
 * Loads this node's identity from `home`, making it on first start. `env` is read for
 * DESKGRID_MACHINE_ID, which overrides the machine fingerprint.
 */
export function loadIdentity(home: string, env: NodeJS.ProcessEnv = process.env): LoadedIdentity {
  const dir = join(home, IDENTITY_DIR);
  const machine = machineFingerprint(env);
  const name = loadSettings(home).name ?? (hostname() || 'deskgrid node');
  const stored = readIdentity(dir);
  if (stored !== null && stored.info.machine === machine) {
    return { identity: toIdentity(stored, name), warning: null };
  }
  if (stored === null) return { identity: createIdentity(home, dir, machine, name), warning: null };
  const aside = moveAside(home, dir);
  const identity = createIdentity(home, dir, machine, name);
  const warning =
    aside === null
      ? null
      : `this data folder was copied from another computer ("${stored.info.name}"), so this node ` +
        `made itself a new identity (${identity.shortId}) and will not pass for that one; ` +
        `the copied identity is kept in ${aside}`;
  return { identity, warning };
}

/** A node id from a certificate's DER bytes (as TLS `getPeerCertificate().raw` gives them). */
export function certificateId(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The short form of a node id shown to people: "3f9a-1c2e". */
export function shortNodeId(id: string): string {
  return `${id.slice(0, 4)}-${id.slice(4, 8)}`;
}

/**
 * Names this machine, hashed (a raw /etc/machine-id should not be written around). Sources:
 * DESKGRID_MACHINE_ID; Linux: /etc/machine-id or /var/lib/dbus/machine-id; macOS: the
 * IOPlatformUUID; Windows: the MachineGuid in the registry. These survive renames and network
 * changes, unlike a MAC address. Only when none is readable (containers, BSDs): the host name
 * and the smallest non-internal MAC address, taken in sorted order so that interfaces coming and
 * going do not change which one is picked.
 */
export function machineFingerprint(env: NodeJS.ProcessEnv = process.env): string {
  const override = env['DESKGRID_MACHINE_ID']?.trim();
  const raw = override ? `override:${override}` : systemMachineId();
  return createHash('sha256').update(`deskgrid machine v1\0${raw}`).digest('hex').slice(0, 32);
}

/** The UUID in `ioreg -rd1 -c IOPlatformExpertDevice` output; exported for tests. */
export function parseIoregPlatformUuid(output: string): string | null {
  return /"IOPlatformUUID"\s*=\s*"([^"]+)"/.exec(output)?.[1] ?? null;
}

/** The GUID in `reg query HKLM\SOFTWARE\Microsoft\Cryptography /v MachineGuid`; exported for tests. */
export function parseRegMachineGuid(output: string): string | null {
  return /MachineGuid\s+REG_SZ\s+(\S+)/i.exec(output)?.[1] ?? null;
}

function systemMachineId(): string {
  const fromSystem = readSystemMachineId();
  if (fromSystem !== null) return `${process.platform}:${fromSystem}`;
  const macs = Object.values(networkInterfaces())
    .flatMap((addresses) => addresses ?? [])
    .filter((address) => !address.internal && address.mac !== '00:00:00:00:00:00')
    .map((address) => address.mac)
    .sort();
  return `host:${hostname()} mac:${macs[0] ?? 'none'}`;
}

function readSystemMachineId(): string | null {
  try {
    switch (process.platform) {
      case 'linux':
        for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
          const id = readOptional(file)?.trim();
          if (id) return id;
        }
        return null;
      case 'darwin':
        return parseIoregPlatformUuid(
          execFileSync('ioreg', ['-rd1', '-c', 'IOPlatformExpertDevice'], {
            encoding: 'utf8',
            timeout: 5000,
            stdio: ['ignore', 'pipe', 'ignore'],
          }),
        );
      case 'win32':
        // /reg:64: a 32-bit node would otherwise read the WOW64 view, which has no MachineGuid.
        return parseRegMachineGuid(
          execFileSync(
            'reg',
            ['query', 'HKLM\\SOFTWARE\\Microsoft\\Cryptography', '/v', 'MachineGuid', '/reg:64'],
            { encoding: 'utf8', timeout: 5000, windowsHide: true, stdio: ['ignore', 'pipe', 'ignore'] },
          ),
        );
      default:
        return null;
    }
  } catch {
    return null;
  }
}

function readOptional(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function toIdentity(stored: StoredIdentity, name: string): NodeIdentity {
  return {
    id: stored.info.id,
    shortId: shortNodeId(stored.info.id),
    name,
    certPem: stored.certPem,
    keyPem: stored.keyPem,
  };
}

/** The identity kept in `dir`, null when there is none; a damaged one is an error. */
function readIdentity(dir: string): StoredIdentity | null {
  try {
    statSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw damaged(dir, (error as Error).message, error);
  }
  const keyPem = readPart(dir, KEY_FILE);
  const certPem = readPart(dir, CERT_FILE);
  let json: unknown;
  try {
    json = JSON.parse(readPart(dir, INFO_FILE));
  } catch (error) {
    if (error instanceof DeskGridError) throw error;
    throw damaged(dir, `${INFO_FILE} is not valid JSON`, error);
  }
  const info = v.safeParse(InfoSchema, json);
  if (!info.success) {
    throw damaged(dir, `${INFO_FILE} is not valid (${info.issues.map((i) => i.message).join('; ')})`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (error) {
    throw damaged(dir, `${CERT_FILE} does not hold a certificate`, error);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw damaged(dir, `${KEY_FILE} does not hold a private key`, error);
  }
  if (!cert.checkPrivateKey(key)) throw damaged(dir, `${KEY_FILE} does not belong to ${CERT_FILE}`);
  if (certificateId(cert.raw) !== info.output.id) {
    throw damaged(dir, `${INFO_FILE} names another certificate than ${CERT_FILE}`);
  }
  tightenKeyMode(join(dir, KEY_FILE));
  return { info: info.output, certPem, keyPem };
}

function readPart(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : 'cannot be read';
    throw damaged(dir, `${file} ${reason}`, error);
  }
}

function damaged(dir: string, detail: string, cause?: unknown): DeskGridError {
  return new DeskGridError(
    ErrorCode.IdentityFiles,
    `this node's identity in ${dir} is damaged: ${detail}. ` +
      'Restore it from a backup, or move the folder away to make a new identity (this node then gets a new id)',
    cause === undefined ? undefined : { cause },
  );
}

/** A key copied with loose permissions (a backup restore, a zip) is made private again. */
function tightenKeyMode(file: string): void {
  if (process.platform === 'win32') return;
  try {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  } catch {
    // a read-only data folder still works; the key's mode is only a precaution
  }
}

/** Renames `dir` to identity.cloned-<time>; null when another process moved it first. */
function moveAside(home: string, dir: string): string | null {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  for (let attempt = 1; ; attempt += 1) {
    const aside = join(home, `${IDENTITY_DIR}.cloned-${stamp}${attempt > 1 ? `-${attempt}` : ''}`);
    if (existsSync(aside)) continue;
    try {
      renameSync(dir, aside);
      return aside;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
}

/**
 * Writes a new identity to a temp folder and renames it into place, so a crash never leaves
 * half an identity, and of two processes starting at once one wins and both use its identity.
 */
function createIdentity(home: string, dir: string, machine: string, name: string): NodeIdentity {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const made = makeCertificate();
  const id = certificateId(new X509Certificate(made.certPem).raw);
  const info: IdentityInfo = { id, name, machine };
  const temp = mkdtempSync(join(home, `${IDENTITY_DIR}.new-`));
  try {
    chmodSync(temp, 0o700);
    writeDurably(join(temp, KEY_FILE), made.keyPem, 0o600);
    writeDurably(join(temp, CERT_FILE), made.certPem, 0o644);
    writeDurably(join(temp, INFO_FILE), `${JSON.stringify(info, null, 2)}\n`, 0o644);
    renameSync(temp, dir);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    // Another process starting at the same time put its identity there first: use that one.
    if (!existsSync(dir)) throw error;
    const winner = readIdentity(dir);
    if (winner === null || winner.info.machine !== machine) throw error;
    return toIdentity(winner, name);
  }
  return toIdentity({ info, certPem: made.certPem, keyPem: made.keyPem }, name);
}

function writeDurably(file: string, text: string, mode: number): void {
  const fd = openSync(file, 'wx', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // The mode given to open is masked by the umask; the key must be 0600 whatever it is.
  chmodSync(file, mode);
}

const DAY_MS = 24 * 60 * 60 * 1000;

// forge's typings leave out getTBSCertificate, which the fast signing below needs.
type Pki = typeof forge.pki & { getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1 };

/** node-forge, loaded on first use: it takes tens of ms to load and only a first start needs it. */
function loadForge(): { pki: Pki; asn1: typeof forge.asn1 } {
  const loaded = createRequire(import.meta.url)('node-forge') as typeof forge;
  return { pki: loaded.pki as Pki, asn1: loaded.asn1 };
}

/**
 * A key pair from node:crypto (forge's JS keygen takes seconds) and a self-signed certificate
 * built with forge but signed by node:crypto over forge's TBSCertificate bytes (forge's JS RSA
 * signing is ~20x slower).
 */
function makeCertificate(): { certPem: string; keyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // The certificate's own hash (the node id) cannot be in it: name it after its public key.
  const keyTag = createHash('sha256').update(spki).digest('hex').slice(0, 8);

  const { pki, asn1 } = loadForge();
  const cert = pki.createCertificate();
  cert.publicKey = pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = randomSerial();
  const now = Date.now();
  // Backdated: a peer whose clock runs behind ours must not see the certificate as not yet valid.
  cert.validity.notBefore = new Date(now - 7 * DAY_MS);
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + 20);
  cert.validity.notAfter = notAfter;
  const names = [{ name: 'commonName', value: `deskgrid-${keyTag}` }];
  cert.setSubject(names);
  cert.setIssuer(names);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectKeyIdentifier' },
  ]);

  const algorithm = pki.oids['sha256WithRSAEncryption'];
  if (algorithm === undefined) throw new Error('node-forge does not know sha256WithRSAEncryption');
  // The TBSCertificate names the algorithm too, so it is set before the bytes are taken.
  cert.signatureOid = algorithm;
  cert.siginfo.algorithmOid = algorithm;
  // Kept on the certificate: certificateToPem then uses these exact bytes instead of rebuilding.
  cert.tbsCertificate = pki.getTBSCertificate(cert);
  const tbs = Buffer.from(asn1.toDer(cert.tbsCertificate).getBytes(), 'binary');
  cert.signature = sign('sha256', tbs, privateKey).toString('binary');
  const certPem = pki.certificateToPem(cert);

  if (!new X509Certificate(certPem).verify(publicKey)) {
    throw new Error('the new node certificate does not verify with its own key');
  }
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** 128 random bits, first byte 0x40-0x7f: positive and without a leading zero in DER. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x3f) | 0x40;
  return bytes.toString('hex');
}
