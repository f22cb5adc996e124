/**
 * The part of `node-zookeeper-client` (which ships no types) that Locus uses:
 * master detection reads children and data with watches; the test harness
 * creates nodes as a Mesos master would.
 */
declare module 'node-zookeeper-client' {
  namespace zookeeper {
    interface ZkException extends Error {
      getCode(): number;
      getName(): string;
    }
    interface ZkEvent {
      getType(): number;
      getName(): string;
      getPath(): string;
    }
    interface Stat {
      readonly version: number;
    }
    type Watcher = (event: ZkEvent) => void;
    interface Client {
      connect(): void;
      close(): void;
      on(event: 'connected' | 'connectedReadOnly' | 'disconnected' | 'expired' | 'authenticationFailed', listener: () => void): Client;
      once(event: 'connected' | 'connectedReadOnly' | 'disconnected' | 'expired' | 'authenticationFailed', listener: () => void): Client;
      removeAllListeners(): Client;
      addAuthInfo(scheme: string, auth: Buffer): void;
      getChildren(path: string, watcher: Watcher, callback: (error: ZkException | null, children: string[], stat: Stat) => void): void;
      getChildren(path: string, callback: (error: ZkException | null, children: string[], stat: Stat) => void): void;
      getData(path: string, watcher: Watcher, callback: (error: ZkException | null, data: Buffer | null, stat: Stat) => void): void;
      getData(path: string, callback: (error: ZkException | null, data: Buffer | null, stat: Stat) => void): void;
      exists(path: string, watcher: Watcher, callback: (error: ZkException | null, stat: Stat | null) => void): void;
      exists(path: string, callback: (error: ZkException | null, stat: Stat | null) => void): void;
      create(path: string, data: Buffer, mode: number, callback: (error: ZkException | null, path: string) => void): void;
      mkdirp(path: string, callback: (error: ZkException | null, path: string) => void): void;
      remove(path: string, callback: (error: ZkException | null) => void): void;
      setData(path: string, data: Buffer, callback: (error: ZkException | null, stat: Stat) => void): void;
    }
    interface ClientOptions {
      readonly sessionTimeout?: number;
      readonly spinDelay?: number;
      readonly retries?: number;
    }
    function createClient(connectionString: string, options?: ClientOptions): Client;
    const CreateMode: { readonly PERSISTENT: number; readonly EPHEMERAL: number; readonly PERSISTENT_SEQUENTIAL: number; readonly EPHEMERAL_SEQUENTIAL: number };
    const Exception: { readonly NO_NODE: number; readonly NODE_EXISTS: number; readonly CONNECTION_LOSS: number; readonly SESSION_EXPIRED: number };
  }
  export = zookeeper;
}
