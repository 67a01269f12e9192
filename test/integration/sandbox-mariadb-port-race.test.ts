import { describe, expect, it, vi } from 'vitest';
import { connect, mariadbMissing } from '../helpers/mariadb.js';

/** The next free port handed out, when set: two sandboxes started at once can be handed the same one. */
const forced: { port?: number } = {};
vi.mock('../../src/sandbox/ports.js', async (original) => {
  const real = await original<typeof import('../../src/sandbox/ports.js')>();
  return {
    freePort: async () => {
      const port = forced.port;
      delete forced.port;
      return port ?? real.freePort();
    },
  };
});
const { MariadbSandbox } = await import('../../adapters/mysql/mariadb-sandbox.js');

describe.skipIf(mariadbMissing)('sandbox MariaDB', () => {
  it("handed a port another sandbox serves (same password), starts on another port instead of taking the other's for its own", async () => {
    const a = await MariadbSandbox.start({ password: 'same', serverId: 1 });
    try {
      forced.port = a.port;
      const b = await MariadbSandbox.start({ password: 'same', serverId: 2 });
      try {
        expect(b.port).not.toBe(a.port);
        for (const [sb, id] of [
          [a, 1],
          [b, 2],
        ] as const) {
          const c = await connect(sb);
          try {
            const [rows] = await c.query<import('mysql2/promise').RowDataPacket[]>('SELECT @@server_id AS id');
            expect(rows[0]!.id).toBe(id);
          } finally {
            await c.end();
          }
        }
      } finally {
        await b.stop();
      }
    } finally {
      await a.stop();
    }
  });
});
