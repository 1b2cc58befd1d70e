import { describe, expect, it } from 'vitest';
import { isPublicAddress, publicOnlyConnector } from '../../../src/runtime/net-guard.ts';
import { startFakeServer } from '../../fakes/http.ts';

describe('isPublicAddress', () => {
  it('refuses loopback, private, link-local, unique-local, metadata and reserved addresses, IPv4 and IPv6', () => {
    for (const address of [
      '127.0.0.1',
      '127.255.0.9',
      '0.0.0.0',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '100.100.100.200',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      'fe80::1',
      'fe80::1%eth0',
      'fc00::1',
      'fd00:ec2::254',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '64:ff9b::a00:1',
      '2002:7f00:1::',
      '::127.0.0.1',
      'not an address',
    ])
      expect(isPublicAddress(address), address).toBe(false);
  });

  it('accepts public addresses', () => {
    for (const address of [
      '1.1.1.1',
      '8.8.8.8',
      '172.32.0.1',
      '2606:4700:4700::1111',
      '::ffff:8.8.8.8',
      '64:ff9b::808:808',
    ])
      expect(isPublicAddress(address), address).toBe(true);
  });

  it('the connector refuses a socket that landed on a private address', async () => {
    const server = await startFakeServer();
    const connect = publicOnlyConnector({ timeout: 1000 });
    const error = await new Promise<Error | null>((resolve) =>
      connect(
        {
          hostname: '127.0.0.1',
          host: `127.0.0.1:${server.port}`,
          protocol: 'http:',
          port: String(server.port),
        } as never,
        (...args) => resolve(args[0]),
      ),
    );
    expect(error?.message).toContain('leads to a non-public address (127.0.0.1)');
    const exempt = publicOnlyConnector({ timeout: 1000, exempt: ['127.0.0.1'] });
    const socket = await new Promise<unknown>((resolve) =>
      exempt(
        {
          hostname: '127.0.0.1',
          host: `127.0.0.1:${server.port}`,
          protocol: 'http:',
          port: String(server.port),
        } as never,
        (_, s) => resolve(s),
      ),
    );
    expect(socket).toBeTruthy();
    (socket as { destroy(): void }).destroy();
    await server.close();
  });
});
