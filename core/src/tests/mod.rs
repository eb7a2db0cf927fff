//! Crate-wide tests: reliability regressions and the fuzz targets' drivers.

mod fuzz;
pub(crate) mod fuzz_driver;
mod reliability;
