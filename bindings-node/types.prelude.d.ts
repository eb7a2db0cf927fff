// The binding's own conventions, hand-written; every other type below is generated from the core
// types. Keys are snake_case exactly as the Rust core prints them, decimals are strings,
// timestamps are RFC 3339 strings in UTC ending in "Z" (inputs also take `Date`s and any offset).

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
