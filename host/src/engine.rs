//! The wasmtime `Engine`: compiled once, shared by every component and request.

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the engine's epoch advances (Spin's default). A guest running compiled code checks
/// the epoch at function entries and loop heads, so it can be interrupted within about this
/// long, however it loops.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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
        .max_memory_size((crate::limits::MAX_INSTANCE_MEMORY_MIB as usize) << 20)
        // Per-request instances make slot reuse the hot path. By default a freed slot is
        // returned to the kernel with madvise, and the next request page-faults it back in:
        // measured, that was most of the cost of serving /health. Keeping slots resident and
        // resetting only the pages the instance dirtied (found with Linux's PAGEMAP_SCAN, 6.7+,
        // falling back to memset of the low addresses elsewhere) avoids both.
        .linear_memory_keep_resident(4 << 20)
        .async_stack_keep_resident(256 << 10)
        .table_keep_resident(1 << 20)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // Every store then needs an epoch deadline (the server sets one per request).
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// One thread for the life of the process, advancing the epoch every [`EPOCH_TICK`].
fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawning the epoch ticker thread");
}
