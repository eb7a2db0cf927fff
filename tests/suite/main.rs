//! meterkit's workspace integration suite: one test binary, one module per area.

mod api_gaps;
mod engine;
mod findings;
mod postgres;
mod properties;
mod readings;
mod shared;
mod store;
mod vectors;
mod windows;
