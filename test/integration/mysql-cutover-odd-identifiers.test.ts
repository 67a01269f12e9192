import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempStateDir } from '../helpers/cli.js';
import { connect, exec, mariadbMissing, MariadbSandbox, readOnly } from '../helpers/mariadb.js';

const DB = "Shop `Ü` 'db'-1";
const bq = (s: string) => '`' + s.replace(/`/g, '``') + '`';

describe.skipIf(mariadbMissing)('MariaDB cutover of a database whose names need quoting', () => {
  let src: MariadbSandbox;
  let dst: MariadbSandbox;
  let stateDir: string;
  const password = 'Sh@red:pw/1%';

  beforeAll(async () => {
    [src, dst] = await Promise.all([MariadbSandbox.start({ password, serverId: 11 }), MariadbSandbox.start({ password, serverId: 12 })]);
    stateDir = await tempStateDir(src.dir);
    await exec(
      src,
      `CREATE DATABASE ${bq(DB)}`,
      `CREATE TABLE ${bq(DB)}.${bq('select')} (${bq('id`x')} bigint AUTO_INCREMENT PRIMARY KEY, ${bq('väl ue')} varchar(20)) ENGINE=InnoDB`,
      `INSERT INTO ${bq(DB)}.${bq('select')} (${bq('väl ue')}) VALUES ('a'), ('b'), ('c')`,
      `CREATE TABLE ${bq(DB)}.${bq("o'rder")} (id int PRIMARY KEY) ENGINE=InnoDB`,
      `INSERT INTO ${bq(DB)}.${bq("o'rder")} VALUES (1), (2)`,
    );
  });
  afterAll(async () => Promise.all([src?.stop(), dst?.stop()]));

  it('syncs, cuts over and verifies with checksums; the source is left read-only', async () => {
    const plan = join(stateDir, 'odd.yaml');
    const db = encodeURIComponent(DB);
    await writeFile(
      plan,
      [
        'engine: mariadb',
        `source: { url: "mariadb://root@127.0.0.1:${src.port}/${db}", passwordEnv: SRC_PW }`,
        `target: { url: "mariadb://root@127.0.0.1:${dst.port}/${db}", passwordEnv: DST_PW }`,
        `scope: { databases: [${JSON.stringify(DB)}] }`,
        'verify: checksums',
        'router: { kind: none }',
        `state: "${stateDir}"`,
      ].join('\n'),
    );
    const env = { SRC_PW: password, DST_PW: password };
    const sync = await cli(['sync', plan], env);
    expect(sync.code, sync.err).toBe(0);
    const run = await cli(['run', plan, '--yes', '--json'], env);
    expect(run.code, run.err).toBe(0);
    expect(run.json().verify.mismatches).toEqual([]);
    const t = await connect(dst);
    const [rows] = await t.query(`SELECT COUNT(*) AS n FROM ${bq(DB)}.${bq('select')}`);
    await t.query(`INSERT INTO ${bq(DB)}.${bq("o'rder")} VALUES (3)`);
    await t.end();
    expect((rows as Array<{ n: number }>)[0]!.n).toBe(3);
    // root holds READ ONLY ADMIN on MariaDB and would pass read_only: check the server flag itself.
    expect(await readOnly(src)).toBe(1);
    for (const text of [sync.out, sync.err, run.out, run.err]) expect(text).not.toContain(password);
  });
});
