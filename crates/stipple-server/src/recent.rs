//! A bounded memory of the latest values by key: what the server keeps of recent jobs
//! beside the gallery (attention maps of recent images), the oldest forgotten first.

use std::collections::VecDeque;

/// At most `capacity` entries; inserting beyond drops the oldest.
#[derive(Debug)]
pub struct Recent<K, V> {
    capacity: usize,
    entries: VecDeque<(K, V)>,
}

impl<K: PartialEq, V> Recent<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, entries: VecDeque::new() }
    }

    /// Keeps `value` under `key` (replacing an older value of the same key).
    pub fn insert(&mut self, key: K, value: V) {
        self.remove(&key);
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        if self.capacity > 0 {
            self.entries.push_back((key, value));
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn remove(&mut self, key: &K) {
        self.entries.retain(|(k, _)| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn keeps_the_latest_and_forgets_the_oldest() {
        let mut r = Recent::new(2);
        r.insert(1, "a");
        r.insert(2, "b");
        r.insert(1, "a2"); // replaced, now the newest
        r.insert(3, "c"); // drops 2, the oldest
        assert_eq!((r.get(&1), r.get(&2), r.get(&3)), (Some(&"a2"), None, Some(&"c")));
        r.remove(&1);
        assert_eq!(r.get(&1), None);
        let mut none = Recent::new(0);
        none.insert(1, 1);
        assert_eq!(none.get(&1), None);
    }
}
