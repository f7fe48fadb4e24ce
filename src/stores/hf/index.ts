export { HfStore, openHfStore, type HfStoreOptions } from './store.js';
export { HfStoreError, HfBucketNotFoundError, isBucketNotFound, TOKEN_HINT } from './errors.js';
export { resolveHfToken, resolveHfEndpoint, hfTokenPath, DEFAULT_ENDPOINT } from './config.js';
export { DEFAULT_RETRY, type RetryPolicy, type RetryEvent } from './http.js';
