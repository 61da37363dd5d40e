//! Host-side bindings of the `drover:driver` WIT package (`wit/driver.wit`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "drover:driver/driver",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [serde::Serialize, serde::Deserialize],
    with: {
        "drover:driver/exec.process": crate::runtime::exec::Process,
        "drover:driver/container.container": crate::runtime::container::Container,
    },
});

pub use self::drover::driver::types::Capabilities;
