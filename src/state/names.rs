//! Reserved names: kubelet relies on the runtime refusing a second pod or container with the same
//! full name while the first exists ("name is reserved").

use std::collections::HashMap;
use std::sync::Mutex;

/// Maps full names to the id holding them.
#[derive(Default)]
pub struct NameRegistry {
    names: Mutex<HashMap<String, String>>,
}

impl NameRegistry {
    /// Reserves `name` for `id`; returns the current holder if someone else has it.
    pub fn reserve(&self, name: &str, id: &str) -> Result<(), String> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        match names.get(name) {
            Some(holder) if holder != id => Err(holder.clone()),
            _ => {
                names.insert(name.to_string(), id.to_string());
                Ok(())
            }
        }
    }

    /// Frees `name` if `id` holds it.
    pub fn release(&self, name: &str, id: &str) {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.get(name).is_some_and(|holder| holder == id) {
            names.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_reservation_names_the_holder() {
        let r = NameRegistry::default();
        r.reserve("a", "1").unwrap();
        r.reserve("a", "1").unwrap();
        assert_eq!(r.reserve("a", "2").unwrap_err(), "1");
        r.release("a", "2");
        assert!(r.reserve("a", "2").is_err());
        r.release("a", "1");
        r.reserve("a", "2").unwrap();
    }
}
