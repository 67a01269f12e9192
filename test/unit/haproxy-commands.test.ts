import { describe, expect, it } from 'vitest';
import { parseAddr, parseProcNetListeners, parseShowStat, runtimeError, setAddrCmd, setMaxconnCmd, shutdownSessionsCmd } from '../../adapters/routers/haproxy-runtime.js';

describe('HAProxy runtime commands', () => {
  it('builds the hold, move and release commands', () => {
    expect(setMaxconnCmd('db', 'primary', 1)).toBe('set maxconn server db/primary 1');
    expect(setAddrCmd('db', 'primary', '10.0.0.2', 3306)).toBe('set server db/primary addr 10.0.0.2 port 3306');
    expect(shutdownSessionsCmd('db', 'primary')).toBe('shutdown sessions server db/primary');
  });

  it('refuses names, addresses and values that could smuggle a second command', () => {
    expect(() => setMaxconnCmd('db;shutdown', 'x', 1)).toThrow(/backend name/);
    expect(() => setMaxconnCmd('db', 'a b', 1)).toThrow(/server name/);
    expect(() => setAddrCmd('db', 's', 'db2.internal', 3306)).toThrow(/not an IP/);
    expect(() => setMaxconnCmd('db', 's', -1)).toThrow(/maxconn/);
  });

  it('reads one server out of show stat; empty slim is unlimited', () => {
    const csv = '# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,addr,mode\nfe,FRONTEND,,,0,0,1000,0,OPEN,,tcp\ndb,primary,2,2,1,1,,5,no check,127.0.0.1:3306,tcp\n';
    expect(parseShowStat(csv, 'db', 'primary')).toEqual({ scur: 1, qcur: 2, stot: 5, slim: 0, addr: '127.0.0.1:3306', mode: 'tcp', status: 'no check' });
    expect(parseShowStat(csv, 'db', 'other')).toBeUndefined();
    expect(parseAddr('[::1]:3307')).toEqual({ host: '::1', port: 3307 });
  });

  it('tells refusals from informative answers', () => {
    expect(runtimeError('No such server.\n')).toBe('No such server.');
    expect(runtimeError("no need to change the addr, port changed from '3306' to '3307' by 'stats socket command'\n")).toBeUndefined();
    expect(runtimeError('')).toBeUndefined();
  });

  it('finds the process listeners in /proc/net/tcp', () => {
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:9C40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0',
      '   1: 00000000:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0',
      '   2: 0100007F:9C41 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0',
    ].join('\n');
    expect(parseProcNetListeners(table, new Set(['111']))).toEqual([{ host: '127.0.0.1', port: 40000 }]);
    expect(parseProcNetListeners(table, new Set(['222']))).toEqual([{ host: '127.0.0.1', port: 3306 }]);
  });
});
