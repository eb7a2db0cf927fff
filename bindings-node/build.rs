//! Build script: napi-build sets up the linker arguments of the Node addon.
fn main() {
    napi_build::setup();
}
