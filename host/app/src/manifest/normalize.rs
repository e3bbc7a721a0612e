//! Spin's `crates/manifest/src/normalize.rs`: generated trigger IDs and IDs for components
//! declared inline in a trigger.

use std::collections::{BTreeMap, HashSet};

use super::ids::{check_id, KebabId};
use super::schema::{ComponentSpec, RawComponent, RawHttpTrigger};

/// normalize.rs `normalize_trigger_ids` (for the `http` type): triggers without an `id` get
/// `<component>-http-trigger` when they reference a component and that ID is free, else
/// the first free `http-trigger<N>` (one counter across the type's triggers).
pub(super) fn assign_trigger_ids(triggers: &mut [RawHttpTrigger]) {
    // Includes "" for unnamed triggers, exactly as Spin collects it.
    let mut taken: HashSet<String> = triggers.iter().map(|t| t.id.clone()).collect();
    let mut counter = 1;
    for trigger in triggers.iter_mut().filter(|t| t.id.is_empty()) {
        if let Some(ComponentSpec::Reference(KebabId(component))) = &trigger.component {
            let candidate = format!("{component}-http-trigger");
            if taken.insert(candidate.clone()) {
                trigger.id = candidate;
                continue;
            }
        }
        trigger.id = loop {
            let id = format!("http-trigger{counter}");
            if taken.insert(id.clone()) {
                break id;
            }
            counter += 1;
        };
    }
}

/// normalize.rs `normalize_inline_components`: `<trigger id>-component` if that is a valid,
/// unused component ID, else the first unused `inline-component<N>`.
pub(super) fn inline_component_id(
    trigger_id: &str,
    components: &BTreeMap<String, RawComponent>,
) -> String {
    let natural = format!("{trigger_id}-component");
    if check_id(&natural, '-', false).is_ok() && !components.contains_key(&natural) {
        return natural;
    }
    (1..)
        .map(|n| format!("inline-component{n}"))
        .find(|id| !components.contains_key(id))
        .expect("some counter value is free")
}
