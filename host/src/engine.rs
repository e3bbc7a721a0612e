//! The wasmtime `Engine`: compiled once, shared by every component and request.

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Sized for this project's scale (a handful of components, tens of concurrent requests on a
/// small machine) rather than wasmtime's defaults of a thousand of everything.
pub fn new() -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(512)
        .total_core_instances(4096)
        .total_memories(1024)
        .total_tables(2048)
        .total_stacks(512)
        .max_core_instances_per_component(64)
        .max_memories_per_component(16)
        .max_tables_per_component(32)
        .max_memory_size(1 << 30);

    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config).map_err(anyhow::Error::from)?)
}
