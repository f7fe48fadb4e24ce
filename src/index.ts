/** bucketsync as a library: the same pipeline the CLI runs. */
export * from './types.js';
export { parseLocation, formatLocation, isRemote, openStore, BACKENDS, backendOf, type Backend, type BucketAdmin, type Location, type StoreOptions } from './stores/registry.js';
export type { LocalLocation } from './stores/local/location.js';
export type { S3Location } from './stores/s3/location.js';
export type { HfLocation } from './stores/hf/location.js';
export { scanLocal, type ScanOptions, type LocalFileEntry } from './scanner/scan.js';
export { compareCodePoints, collectManifest, type Manifest } from './manifest/order.js';
export { FilterMatcher, parseFilterFile, readFilterFile } from './filters/filter.js';
export { fnmatch } from './filters/fnmatch.js';
export { planSync, compareEntries, checkCompareOptions, type PlanOptions } from './planner/plan.js';
export * from './plan/index.js';
export { executePlan, type ExecEvent, type ExecuteOptions, type ExecuteResult } from './executor/execute.js';
export type { Store, StoreFeatures, HashKind, Expectation, TransferSource, WriteOptions } from './stores/store.js';
export { LocalStore } from './stores/local/store.js';
export { openSides, planSides, planHeader, HeldPlan, executeOn, sync, directionOf, type SyncSides, type PlanRequest, type RunOptions } from './sync/sync.js';
export { applyPlanFile, type ApplyOptions, type ApplyResult } from './sync/apply.js';
export {
  createBucket,
  bucketInfo,
  listBuckets,
  listFiles,
  deleteBucket,
  moveBucket,
  updateBucketSettings,
  removeFiles,
  copyFiles,
  BucketError,
  BucketBatchError,
  type BatchFailure,
  type BucketClientOptions,
  type CreateBucketOptions,
  type CreatedBucket,
  type BucketInfoOptions,
  type BucketInfo,
  type ListBucketsOptions,
  type BucketSummary,
  type ListFilesOptions,
  type FileItem,
  type DeleteBucketOptions,
  type DeletedBucket,
  type MoveBucketOptions,
  type BucketSettingsOptions,
  type RemoveFilesOptions,
  type RemoveResult,
  type CopyFilesOptions,
  type CopiedFile,
} from './buckets/api.js';
