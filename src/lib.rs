pub mod ofx { pub mod bindings; }
