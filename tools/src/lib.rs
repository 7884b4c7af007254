//! syncwatch-tools: programs that drive a syncwatch service from outside — the load
//! generator (`load`) and the simulated connector fleet (`demo`) — and the typed API client
//! they share. They live beside the service, not in its library.

pub mod cli;
pub mod client;
pub mod demo;
pub mod load;

use uuid::Uuid;

/// The UUID namespace of every name-based (v5) id the tools derive, such as the stable
/// connection ids of `load` and `demo`: `Uuid::new_v5(&ID_NAMESPACE, name)`. A fixed value,
/// chosen once at random; changing it changes every derived id.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0xd2d5_8b78_60d8_4620_81c1_8228_a0be_c730);

/// A stable id for `name` in the tools' namespace.
pub fn stable_id(name: &str) -> Uuid {
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_are_stable_and_distinct() {
        assert_eq!(stable_id("a/1"), stable_id("a/1"));
        assert_ne!(stable_id("a/1"), stable_id("a/2"));
        assert_eq!(stable_id("a/1").get_version_num(), 5);
    }
}
