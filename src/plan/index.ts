/** Plan files: hf-compatible JSONL serialisation, atomic writing and validated streaming reading. */
export { pyJsonDumps, pyJsonString, pyFloatRepr, pyIntRepr, pyFloat, PyFloat, type PyJsonValue } from './pyjson.js';
export {
  mtimeToIso,
  isoToMs,
  isoToPyTimestampMs,
  parseIso,
  nowIso,
  statMtimeMs,
  formatIsoUtc,
  type IsoInstant,
} from './time.js';
export {
  PLAN_FORMAT_VERSION,
  SummaryCounter,
  planSummary,
  formatHeader,
  formatOperation,
  optionsToJson,
  filtersToJson,
  writePlanFile,
  writePlanToStream,
  writePlanToStreamDirect,
  PlanWriteError,
  type PlanHeaderInput,
  type PlanWriteResult,
} from './writer.js';
export {
  PlanError,
  MAX_PLAN_LINE_LENGTH,
  planPathProblem,
  readPlanHeader,
  readPlanOperations,
  readPlanEntries,
  validatePlanFile,
  type PlanReadOptions,
  type PlanEntry,
  type PlanValidation,
} from './reader.js';
