//! meterkit's workspace integration suite: one test binary, one module per area.

mod engine;
mod vectors;
mod windows;
