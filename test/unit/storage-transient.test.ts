/**
 * Which storage errors a stage's input listing waits out (transient: the storage is away just
 * now) and which fail its job at once (permanent: the storage said no). The tool outputs are what
 * the ceph, rados and getfattr CLIs print in those situations.
 */
import { describe, expect, it } from 'vitest';
import { LocusError } from '../../src/core/errors.js';
import { isTransientStorageError, storageError, wrapStorageError } from '../../src/storage/errors.js';
import { ToolError, runTool } from '../../src/storage/exec.js';
import { remoteError } from '../../src/storage/hdfs/client.js';

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: failed`), { code });
const tool = (stderr: string, timedOut = false): ToolError => new ToolError('ceph osd stat', timedOut ? null : 1, stderr, '', timedOut);
const remote = (exception: string, message = 'm'): { exception: string; javaClassName: string; message: string } => ({ exception, javaClassName: `org.apache.hadoop.${exception}`, message });

describe('isTransientStorageError', () => {
  it.each([
    ['UNAVAILABLE (cannot reach the NameNode)', storageError('UNAVAILABLE', 'hdfs://nn/x', 'cannot reach nn:9870 (ECONNREFUSED)')],
    ['TIMEOUT', storageError('TIMEOUT', 'hdfs://nn/x', 'no answer within 120000 ms')],
    ['an HTTP 503 without a RemoteException, wrapped', wrapStorageError('hdfs://nn/x', new LocusError('STORAGE', 'GETFILESTATUS: HTTP 503 from nn', { details: { status: 503 } }))],
    ['a RemoteException answered 500', remoteError(500, remote('NullPointerException'))],
    ['a NameNode starting up (RetriableException)', remoteError(403, remote('RetriableException', 'Namenode is in startup mode'))],
    ['a NameNode in safe mode', remoteError(403, remote('SafeModeException'))],
    ['a standby NameNode', remoteError(403, remote('StandbyException'))],
    ['ECONNREFUSED as the cause', wrapStorageError('glusterfs://v/x', errno('ECONNREFUSED'))],
    ['ECONNRESET', errno('ECONNRESET')],
    ['EHOSTUNREACH', errno('EHOSTUNREACH')],
    ['ETIMEDOUT', errno('ETIMEDOUT')],
    ['a GlusterFS mount whose client died (ENOTCONN)', wrapStorageError('glusterfs://v/x', errno('ENOTCONN'))],
    ['a stale NFS-like handle (ESTALE)', errno('ESTALE')],
    ['ceph monitors unreachable', new LocusError('STORAGE', 'ceph failed', { cause: tool('2024-01-01 monclient(hunting): authenticate timed out after 300\n[errno 110] RADOS timed out (error connecting to the cluster)') })],
    ['a rados call that timed out', tool('', true)],
    ['an HTTP 502 from a proxy in front of the NameNode', new LocusError('STORAGE', 'LISTSTATUS: HTTP 502 from nn', { details: { status: 502 } })],
    ['an HTTP 504', new LocusError('STORAGE', 'LISTSTATUS: HTTP 504 from nn', { details: { status: 504 } })],
    ['an HTTP 429 (too many requests)', new LocusError('STORAGE', 'LISTSTATUS: HTTP 429 from nn', { details: { status: 429 } })],
    ['EAI_AGAIN (DNS not answering just now)', errno('EAI_AGAIN')],
    ['getfattr on a dead FUSE mount', tool('getfattr: /mnt/gv0/x: Transport endpoint is not connected')],
  ])('%s is transient', (_what, err) => {
    expect(isTransientStorageError(err)).toBe(true);
  });

  it.each([
    ['no such file', storageError('NOT_FOUND', 'hdfs://nn/x', 'no such file or directory')],
    ['a RemoteException FileNotFoundException', remoteError(404, remote('FileNotFoundException'))],
    ['permission denied', remoteError(403, remote('AccessControlException', 'Permission denied: user=alice'))],
    ['a 403 without a RemoteException', new LocusError('FORBIDDEN', 'LISTSTATUS: forbidden', { details: { status: 403 } })],
    ['a 400 the NameNode answers for a bad request', remoteError(400, remote('IllegalArgumentException'))],
    ['a malformed URI', storageError('INVALID_FIELD', 'hdfs:///x', 'names no NameNode')],
    ['an unknown scheme', new LocusError('UNSUPPORTED', 'x://y: no storage backend')],
    ['a PROTOCOL error (not WebHDFS)', new LocusError('PROTOCOL', 'GETFILESTATUS: the answer is not JSON')],
    ['ENOENT', errno('ENOENT')],
    ['a plain Error', new Error('something else')],
    ['an HTTP 501 (an operation the server does not implement)', new LocusError('STORAGE', 'LISTSTATUS: HTTP 501 from nn', { details: { status: 501 } })],
    ['an HTTP 505 (an HTTP version the server does not speak)', new LocusError('STORAGE', 'LISTSTATUS: HTTP 505 from nn', { details: { status: 505 } })],
    ['ENOTFOUND (a host DNS does not know)', errno('ENOTFOUND')],
    ['an error marked permanent over a transient cause', new LocusError('TIMEOUT', 'too large', { cause: errno('ETIMEDOUT'), details: { permanent: true } })],
    ['a missing ceph.conf or keyring', new LocusError('STORAGE', 'cannot connect', { cause: tool('[errno 2] RADOS object not found (error connecting to the cluster)') })],
    // A NOT_FOUND wrapping a transient cause is still a "no": the outer code decides first.
    ['NOT_FOUND with a transient cause', new LocusError('NOT_FOUND', 'x', { cause: errno('ECONNRESET') })],
  ])('%s is permanent', (_what, err) => {
    expect(isTransientStorageError(err)).toBe(false);
  });

  it('a storage tool that is not installed is permanent, although UNAVAILABLE', async () => {
    const err = await runTool('locus-no-such-tool-xyz', [], { timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect((err as LocusError).code).toBe('UNAVAILABLE');
    expect(isTransientStorageError(wrapStorageError('ceph://pool/x', err))).toBe(false);
  });
});
