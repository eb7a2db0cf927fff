//! meterkit's workspace integration suite: one test binary, one module per area.

mod vectors;
mod windows;
