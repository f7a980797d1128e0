//! The floor under any proxy-wasm network filter that looks at its bytes:
//! for every chunk in either direction it reads the buffer from Envoy (the
//! one host call the filter cannot do without) and lets it pass. No
//! parsing, no state.
//!
//! `bench/run.py` measures it beside the filter (its `wasm_floor` target),
//! so the part of the filter's cost that is Envoy's Wasm machinery (the
//! VM call per callback, the SDK's dispatch, the copy of each chunk into
//! the VM) is shown apart from the part that is the filter's own work.
//! Never deployed.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(Connection))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

struct Connection;

impl Context for Connection {}

/// Reads the chunk, as the filter does, and keeps it from being optimized
/// away.
fn read(buffer: BufferType, size: usize) {
    if let Ok(bytes) = hostcalls::get_buffer(buffer, 0, size) {
        std::hint::black_box(bytes);
    }
}

impl StreamContext for Connection {
    fn on_downstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        read(BufferType::DownstreamData, size);
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        read(BufferType::UpstreamData, size);
        Action::Continue
    }
}
