import { Command, Option } from 'commander';
import { FenceLeakError, parseDuration, readOnlyOff, readOnlyOn, readOnlyStatus, resolveUrlPassword, UsageError, type ReadOnlyMode, type ReadOnlyOptions, type ReadOnlyScope } from '../../index.js';
import type { CliContext, GlobalOpts } from '../context.js';
import { renderReadOnlyOff, renderReadOnlyOn, renderReadOnlyStatus } from '../render-readonly.js';

/** The password for the URL, its secret remembered for scrubbing; a password inside the URL gets a note. */
function urlPassword(ctx: CliContext, url: string, passwordEnv: string | undefined): string | undefined {
  const r = resolveUrlPassword(url, ctx.io.env, passwordEnv ? { name: passwordEnv, key: '--password-env' } : undefined);
  if (r.inUrl) ctx.io.err(`note: the URL carries a password, which shows in the process list and shell history; prefer ${r.engineEnv} or --password-env\n`);
  ctx.addSecret(r.secret);
  return r.password;
}

export function registerReadOnly(program: Command, ctx: CliContext): void {
  program
    .command('readonly')
    .summary('put a database into its native read-only mode, prove it holds, lift it again')
    .description(
      'Fence a server, database or role read-only (PostgreSQL default_transaction_read_only; MySQL/MariaDB read_only).\n' +
        'on: set it, drain open write transactions, end sessions that could still write, then watch for leaks.\n' +
        'off: put back exactly what `on` changed (recorded in the state dir).\nstatus: the setting per scope and who could still write.',
    )
    .argument('<action>', 'on | off | status')
    .argument('<url>', 'postgres://user@host:port/db or mysql://user@host:port/db (password via PGPASSWORD/MYSQL_PWD or --password-env)')
    .addOption(new Option('--scope <scope>', 'what to fence (default: the URL database on PostgreSQL, else server)').choices(['server', 'database', 'role', 'schema']))
    .option('--name <name>', 'database, role or schema name for that scope')
    .addOption(new Option('--mode <mode>', 'advisory: setting only; enforced: + drain and end sessions; strict: + lock --role accounts').choices(['advisory', 'enforced', 'strict']).default('enforced'))
    .option('--role <name>', 'strict mode: app role/account that may not log in while fenced (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--drain-timeout <duration>', 'how long open write transactions may finish before their sessions are ended', '10s')
    .option('--lock-timeout <duration>', 'bound on every lock the tool waits for', '2s')
    .option('--probe <duration>', 'leak check window after the fence', '500ms')
    .option('--password-env <NAME>', 'read the password from this environment variable')
    .addOption(
      new Option('--privileges <profile>', 'auto: detect from the account; managed: no superuser (MySQL: lock and revoke the --role accounts instead of read_only)')
        .choices(['auto', 'superuser', 'managed'])
        .default('auto'),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  PGPASSWORD=... cutover readonly on postgres://postgres@db1/shop\n  cutover readonly on postgres://postgres@db1/postgres --scope server --mode advisory\n  cutover readonly on postgres://postgres@db1/shop --mode strict --role app\n  cutover readonly status postgres://postgres@db1/shop --json\n  cutover readonly off postgres://postgres@db1/shop',
    )
    .action(async (action: string, url: string, o: Record<string, unknown>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOpts>();
      if (!['on', 'off', 'status'].includes(action)) throw new UsageError(`unknown action "${action}"`, 'use: cutover readonly on|off|status <url>');
      const password = urlPassword(ctx, url, o.passwordEnv as string | undefined);
      const opts: ReadOnlyOptions = {
        url,
        ...(password !== undefined ? { password } : {}),
        ...(o.scope ? { scope: o.scope as ReadOnlyScope } : {}),
        ...(o.name ? { name: o.name as string } : {}),
        mode: o.mode as ReadOnlyMode,
        roles: o.role as string[],
        drainTimeoutMs: parseDuration(o.drainTimeout as string, '--drain-timeout'),
        lockTimeoutMs: parseDuration(o.lockTimeout as string, '--lock-timeout'),
        probeMs: parseDuration(o.probe as string, '--probe'),
        privileges: o.privileges as 'auto' | 'superuser' | 'managed',
        ...(g.stateDir ? { stateDir: g.stateDir } : {}),
      };
      if (action === 'on') {
        try {
          const r = await readOnlyOn(opts);
          ctx.emit(g.json, r, renderReadOnlyOn(r));
        } catch (e) {
          if (e instanceof FenceLeakError && !g.json) ctx.print(renderReadOnlyOn(e.result));
          throw e;
        }
      } else if (action === 'off') {
        const r = await readOnlyOff(opts);
        ctx.emit(g.json, r, renderReadOnlyOff(r));
      } else {
        const r = await readOnlyStatus(opts);
        ctx.emit(g.json, r, renderReadOnlyStatus(r));
      }
    });
}
