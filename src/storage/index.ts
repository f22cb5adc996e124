/**
 * The storage module's public surface: the registry (the port the scheduler
 * uses), the backends, host mapping, and local datasets.
 */
export type { ResolveOptions, StorageBackend } from './port.js';
export { createStorageRegistry, type StorageConfig, type StorageRegistry } from './registry.js';
export { HostMapper, loadHostMap, decodeHostMap, type HostMapConfig, type StorageReplica } from './hostmap.js';
export { LocationCache } from './cache.js';
export { WebHdfsBackend, type WebHdfsConfig } from './hdfs/backend.js';
export { CephBackend, type CephConfig, type ObjectLocation } from './ceph/backend.js';
export { GlusterBackend, parsePathinfo, type GlusterConfig } from './gluster/backend.js';
export { FileBackend, LocalDatasetBackend, type FileConfig, type LocalDatasetConfig } from './local/backend.js';
export { putLocalDataset, type PutLocalDatasetOptions, type PutResult } from './local/put.js';
export { readManifest, readTopology, type DatasetManifest, type LocalTopology } from './local/dataset.js';
export { parseStorageUri, type StorageUri } from './uri.js';
