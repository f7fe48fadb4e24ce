export { HfTestServer, startHfServer, compareCodePoints } from './server.js';
export type { HfTestServerOptions, Fault, RouteName, BucketFile, HfTestStats, TokenInfo } from './server.js';
