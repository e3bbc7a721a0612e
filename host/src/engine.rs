//! The wasmtime `Engine`: compiled once, shared by every component and request.

use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the engine's epoch advances (Spin's default). A guest running compiled code checks
/// the epoch at function entries and loop heads, so it can be interrupted within about this
/// long, however it loops.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What one component instance may take from the pool. Every component is checked against
/// these when the app loads ([`check_fits`]), so `instances` concurrent instances of any mix of
/// the app's components always fit a pool sized `instances` times these: instantiation never
/// fails for want of a slot while the server admits no more than `instances` requests at once.
/// (Measured: each of the app's components, spin-sdk 5.2 on wasm32-wasip2, needs 1 memory and
/// 2 tables; the shares leave room for a component built otherwise.)
const MEMORIES_PER_INSTANCE: u32 = 2;
const TABLES_PER_INSTANCE: u32 = 4;
/// Core instances cost the pool nothing but a counter.
const CORE_INSTANCES_PER_INSTANCE: u32 = 64;

/// An engine whose instance pool holds `instances` component instances at once (the server's
/// `--max-concurrent-requests`).
pub fn new(instances: u32) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        // One fiber stack per instance: a request's store runs one call at a time.
        .total_stacks(instances)
        .total_core_instances(instances * CORE_INSTANCES_PER_INSTANCE)
        .total_memories(instances * MEMORIES_PER_INSTANCE)
        .total_tables(instances * TABLES_PER_INSTANCE)
        .max_core_instances_per_component(CORE_INSTANCES_PER_INSTANCE)
        .max_memories_per_component(MEMORIES_PER_INSTANCE)
        .max_tables_per_component(TABLES_PER_INSTANCE)
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

/// Refuses, at load, a component that would need more of the pool per instance than the pool
/// was sized for.
pub fn check_fits(component: &Component) -> anyhow::Result<()> {
    let Some(needs) = component.resources_required() else {
        anyhow::bail!(
            "it instantiates imported core modules, so what it needs from the instance pool cannot be known"
        );
    };
    tracing::debug!(
        memories = needs.num_memories,
        tables = needs.num_tables,
        "pool slots one instance needs"
    );
    if needs.num_memories > MEMORIES_PER_INSTANCE || needs.num_tables > TABLES_PER_INSTANCE {
        anyhow::bail!(
            "one instance needs {} memories and {} tables; this host's instance pool allows {MEMORIES_PER_INSTANCE} and {TABLES_PER_INSTANCE}",
            needs.num_memories,
            needs.num_tables
        );
    }
    Ok(())
}
