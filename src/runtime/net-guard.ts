/**
 * Where untrusted URLs may lead. A URL found in a backend's answer (or a redirect) may point at
 * public addresses only: loopback, private, link-local, unique-local, shared (CGNAT), multicast,
 * reserved and cloud metadata addresses, IPv4 and IPv6, are refused. Names are checked after DNS
 * resolution, and the connector checks the address a socket actually connected to, so neither a
 * name nor a re-bound DNS answer can smuggle a private address past the check.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type Socket } from 'node:net';
import { buildConnector } from 'undici';
import { BackendError } from '../errors.ts';

const nonPublic = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // shared address space (CGNAT; also some cloud metadata)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo and others)
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique-local (fd00:ec2::254 is a metadata address)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local
  ['ff00::', 8], // multicast
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address (with an embedded dotted IPv4 tail, too). */
function ipv6Groups(address: string): number[] {
  let text = address.split('%')[0]!.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -dotted[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const middle = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((group) => Number.parseInt(group, 16));
}

/** The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, compatible), if any. */
function embeddedIpv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  const quad = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  const zero = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  if (zero(0, 5) && g[5] === 0xffff) return quad(g[6]!, g[7]!); // ::ffff:a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return quad(g[6]!, g[7]!); // 64:ff9b::/96
  if (g[0] === 0x2002) return quad(g[1]!, g[2]!); // 6to4
  if (zero(0, 6) && (g[6] !== 0 || g[7]! > 1)) return quad(g[6]!, g[7]!); // ::a.b.c.d (deprecated)
  return undefined;
}

/** True for an address anyone on the internet could reach: not loopback, private, link-local... */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !nonPublic.check(address, 'ipv4');
  if (family !== 6) return false;
  const v4 = embeddedIpv4(address);
  if (v4 !== undefined) return isPublicAddress(v4);
  return !nonPublic.check(address.split('%')[0]!, 'ipv6');
}

/** Parses a URL and accepts only `http` and `https`. */
export function httpUrl(url: string | URL, backend: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BackendError(backend, 'blocked', `${backend}: not a URL: ${String(url).slice(0, 100)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new BackendError(backend, 'blocked', `${backend}: refused a ${parsed.protocol} URL`);
  return parsed;
}

const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

/**
 * Checks that `url`'s host is public: an address literal at once, a name by resolving it (every
 * address it resolves to must be public). Throws a `BackendError` of kind `blocked`.
 */
export async function assertPublicHost(url: URL, backend: string): Promise<void> {
  const host = hostOf(url);
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);
    } catch (error) {
      throw new BackendError(backend, 'network', `${backend}: cannot resolve ${host}`, { cause: error });
    }
  }
  const refused = addresses.find((address) => !isPublicAddress(address));
  if (refused !== undefined) throw blocked(backend, url, refused);
}

function blocked(backend: string, url: URL, address: string): BackendError {
  return new BackendError(
    backend,
    'blocked',
    `${backend}: refused ${url.origin}: it leads to a non-public address (${address})`,
  );
}

type Connect = ReturnType<typeof buildConnector>;

/**
 * An undici connector that refuses a socket whose remote address is not public, checked once the
 * connection stands, so whatever DNS said on the way, a private address never gets a request.
 * `exempt` names hosts it does not check (the configured proxy).
 */
export function publicOnlyConnector(options: { timeout: number; exempt?: readonly string[] }): Connect {
  const connect = buildConnector({ timeout: options.timeout });
  const exempt = new Set(options.exempt ?? []);
  return (opts, callback) =>
    connect(opts, (error, socket) => {
      if (error || !socket) return callback(error ?? new Error('no socket'), null);
      const remote = (socket as Socket).remoteAddress ?? '';
      if (exempt.has(opts.hostname) || isPublicAddress(remote)) return callback(null, socket);
      socket.destroy();
      const url = new URL(`${opts.protocol}//${opts.host ?? opts.hostname}`);
      callback(blocked('connect', url, remote), null);
    });
}
