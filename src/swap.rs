//! A value replaced whole while serving (reloads): readers take the one in force and keep it as
//! long as they need; a replacement never waits for them. A leaf: it names nothing of the crate.

use std::sync::{Arc, RwLock};

pub struct Swap<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Swap<T> {
    pub fn new(value: T) -> Swap<T> {
        Swap {
            current: RwLock::new(Arc::new(value)),
        }
    }

    /// The value in force now.
    pub fn get(&self) -> Arc<T> {
        // A poisoned lock still holds a whole value: a swap is one assignment.
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `value` in force; readers that took the old one keep it.
    pub fn replace(&self, value: T) {
        let fresh = Arc::new(value);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }
}
