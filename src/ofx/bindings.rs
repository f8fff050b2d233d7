//! The C declarations of `ofx-headers/`, as bindgen sees them (generated at build time).
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/ofx_bindings.rs"));
