//! uniffi's bindings generator, built from the same `uniffi` dependency as the library, so the
//! generated Kotlin/Swift/Python always match the scaffolding in `libmeterkit_mobile`.

fn main() {
    uniffi::uniffi_bindgen_main();
}
