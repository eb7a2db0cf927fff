// The binding's own conventions, hand-written; every other type below is generated from the core
// types. Keys are camelCase (the core's snake_case field names converted at the package's edge by
// `meterkit::json::case`); keys that are user data (dimension names in `dimensions`, `group`,
// `filters`, `filter`, `unique`, rule names in `byRule`) are kept as they are, and a tariff
// document (`TariffDocument`, the meterkit tariff JSON/TOML format) keeps its snake_case keys in
// every host, as do partial-state columns (`PartialStates`, a versioned schema shared with Arrow
// and Python). Enum values (`'late_record'`, `'invalid_record'`) are values and keep their
// spelling. Decimals are strings, timestamps are RFC 3339 strings in UTC ending in "Z" (inputs
// also take `Date`s and any offset).

/** A decimal as text: `"12.5"`, `"-3"`, `"1e-3"` (outputs are always plain and shortest). */
export type DecimalString = string
/** An instant as RFC 3339 text: outputs are UTC with `Z` (`"2024-03-01T09:00:00Z"`). */
export type Timestamp = string

/** A usage record as given to `ingest`: a `UsageRecord` whose quantity may be a JS number (read through its shortest decimal text) and whose instants may be `Date`s. */
export type UsageRecordInput = Omit<UsageRecord, 'quantity' | 'timestamp' | 'end'> & {
  quantity: DecimalString | number
  timestamp: Date | Timestamp
  end?: Date | Timestamp | null
}

/**
 * Partial rollup states (`partialRollup`, `mergePartials`, `finalizePartials`,
 * `Engine.importPartials`): one object of columns of the partial-state schema (version 1,
 * docs/scale-out.md), one entry per bucket in every column. Group and unique columns are named
 * `group_<dim>` and `unique_<dim>` after the spec's dimensions; `latest_ts` (nanoseconds) is a
 * string, beyond JavaScript's exact integers.
 */
export type PartialStates = {
  schema_version: number[]
  tenant: string[]
  spec: number[]
  window_start: number[]
  window_end: number[]
  sum: DecimalString[]
  count: number[]
  min: DecimalString[]
  min_id: string[]
  max: DecimalString[]
  max_id: string[]
  latest: DecimalString[]
  latest_id: string[]
  latest_ts: string[]
  flagged_count: number[]
  flagged_sum: DecimalString[]
  estimated_count: number[]
  estimated_sum: DecimalString[]
} & { [column: `group_${string}`]: Array<string | null> } & { [column: `unique_${string}`]: string[][] }

/** What every meterkit function throws: an `Error` with the core's error envelope. */
export interface MeterkitError extends Error {
  code: ErrorCode
  /** The core's kind; `internal` for a bug (a Rust panic caught before it reached Node). */
  kind: ErrorKind | 'internal'
  /** The usage record concerned, when one is. */
  recordId: string | null
  /** The field (JSON key, column, tariff key) concerned, when one is. */
  field: string | null
  /** The 1-based input line, when the error came from reading text. */
  line: number | null
  /** Whether trying again may succeed (a lost connection, a serialisation failure of a shared store). */
  retryable: boolean
}

/** Options of `new Engine(options)`. */
export interface EngineOptions {
  /**
   * A SQLite database file (created if missing), or a `postgres://` / `postgresql://` URL of a
   * PostgreSQL database that several engines and processes share; in memory when absent.
   */
  path?: string | null
  /** Receives every event, on the JS thread, in order. A callback that throws raises an uncaught exception, like any event listener. */
  onEvent?: ((event: MeterkitEvent) => void) | null
}
