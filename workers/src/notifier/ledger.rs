//! The SQS messages the worker holds: received, not yet deleted because some of their objects
//! are not delivered yet. Pure bookkeeping (times in ms since the epoch); the worker does the
//! calls.
//!
//! * A message is deleted only once every object it announced is delivered
//!   ([`Ledger::delivered`] returns its receipt then): at least once.
//! * While held, a message is kept hidden: [`Ledger::due`] lists those whose visibility ends
//!   soon, [`Ledger::extended`] records a new end. SQS hides a message at most 12 hours in all.
//! * A message seen again (its visibility ended before it was extended, or an extension was
//!   refused) is the same message: [`Ledger::seen_again`] keeps the newest receipt handle (SQS
//!   deletes only with that one) and its objects are not taken twice.

use std::collections::HashMap;

/// One held message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub receipt: String,
    /// When it was first received.
    pub received_ms: i64,
    /// When SQS makes it visible again unless extended.
    pub hidden_until_ms: i64,
    /// Its objects not delivered yet.
    open: usize,
}

#[derive(Debug, Default)]
pub struct Ledger {
    messages: HashMap<String, Held>,
    open_objects: usize,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Objects held and not delivered yet.
    pub fn held_objects(&self) -> usize {
        self.open_objects
    }

    pub fn held_messages(&self) -> usize {
        self.messages.len()
    }

    /// A message received again while held: its receipt is replaced. `false` if not held.
    pub fn seen_again(&mut self, id: &str, receipt: &str, now: i64, visibility_ms: i64) -> bool {
        match self.messages.get_mut(id) {
            Some(h) => {
                h.receipt = receipt.to_string();
                h.hidden_until_ms = now + visibility_ms;
                true
            }
            None => false,
        }
    }

    /// Holds a message with `objects` (≥ 1) to deliver.
    pub fn hold(&mut self, id: &str, receipt: &str, now: i64, visibility_ms: i64, objects: usize) {
        debug_assert!(objects > 0, "a message without objects to deliver is deleted, not held");
        if self.messages.contains_key(id) {
            return;
        }
        self.open_objects += objects;
        self.messages.insert(
            id.to_string(),
            Held {
                receipt: receipt.to_string(),
                received_ms: now,
                hidden_until_ms: now + visibility_ms,
                open: objects,
            },
        );
    }

    /// One object of message `id` was delivered; the message's receipt once all were.
    pub fn delivered(&mut self, id: &str) -> Option<String> {
        let h = self.messages.get_mut(id)?;
        h.open -= 1;
        self.open_objects -= 1;
        if h.open == 0 { self.messages.remove(id).map(|h| h.receipt) } else { None }
    }

    /// Stops holding message `id` (its delivery was abandoned); its receipt, to make it
    /// visible again.
    pub fn release(&mut self, id: &str) -> Option<String> {
        let h = self.messages.remove(id)?;
        self.open_objects -= h.open;
        Some(h.receipt)
    }

    /// Stops holding everything (shutdown); the receipts.
    pub fn release_all(&mut self) -> Vec<String> {
        self.open_objects = 0;
        self.messages.drain().map(|(_, h)| h.receipt).collect()
    }

    /// When the first received of the held messages was received.
    pub fn oldest_received_ms(&self) -> Option<i64> {
        self.messages.values().map(|h| h.received_ms).min()
    }

    /// Messages whose hiding ends within `margin_ms` of `now` and can still be extended (SQS's
    /// 12-hour limit not reached): (id, receipt).
    pub fn due(&self, now: i64, margin_ms: i64) -> Vec<(String, String)> {
        let mut due: Vec<(String, String)> = self
            .messages
            .iter()
            .filter(|(_, h)| h.hidden_until_ms - now <= margin_ms && now - h.received_ms < super::limits::HOLD_LIMIT_MS)
            .map(|(id, h)| (id.clone(), h.receipt.clone()))
            .collect();
        due.sort();
        due
    }

    /// When the next message becomes [`Ledger::due`].
    pub fn next_due_ms(&self, margin_ms: i64) -> Option<i64> {
        self.messages
            .values()
            .map(|h| (h, h.hidden_until_ms.saturating_sub(margin_ms)))
            .filter(|(h, at)| at - h.received_ms < super::limits::HOLD_LIMIT_MS)
            .map(|(_, at)| at)
            .min()
    }

    /// The message's hiding was extended to `until`.
    pub fn extended(&mut self, id: &str, until: i64) {
        if let Some(h) = self.messages.get_mut(id) {
            h.hidden_until_ms = until;
        }
    }

    /// When `id` was first received (for the 12-hour limit).
    pub fn received_ms(&self, id: &str) -> Option<i64> {
        self.messages.get(id).map(|h| h.received_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_deleted_once_all_its_objects_are_delivered() {
        let mut l = Ledger::new();
        l.hold("m1", "r1", 0, 60_000, 2);
        l.hold("m2", "r2", 5, 60_000, 1);
        l.hold("m1", "other", 7, 60_000, 5);
        assert_eq!((l.held_messages(), l.held_objects()), (2, 3), "holding twice changes nothing");
        assert_eq!(l.delivered("m1"), None);
        assert_eq!(l.delivered("m2"), Some("r2".to_string()));
        assert!(l.seen_again("m1", "r1b", 100, 60_000), "re-received while held: the newest receipt");
        assert_eq!(l.delivered("m1"), Some("r1b".to_string()));
        assert_eq!((l.held_messages(), l.held_objects()), (0, 0));
        assert_eq!(l.delivered("m1"), None, "unknown ids are ignored");
        assert!(!l.seen_again("m1", "r1c", 200, 60_000), "gone: a new receive");
    }

    #[test]
    fn hiding_is_extended_before_it_ends_up_to_the_limit() {
        let mut l = Ledger::new();
        l.hold("a", "ra", 0, 60_000, 1);
        l.hold("b", "rb", 30_000, 60_000, 1);
        assert_eq!(l.next_due_ms(20_000), Some(40_000));
        assert_eq!(l.due(39_999, 20_000), vec![]);
        assert_eq!(l.due(40_000, 20_000), vec![("a".to_string(), "ra".to_string())]);
        l.extended("a", 400_000);
        assert_eq!(l.next_due_ms(20_000), Some(70_000));
        assert_eq!(l.due(75_000, 20_000), vec![("b".to_string(), "rb".to_string())]);
        // Near SQS's limit nothing is extended any more: it comes back by itself.
        l.extended("a", super::super::limits::HOLD_LIMIT_MS + 1);
        assert!(l.due(super::super::limits::HOLD_LIMIT_MS + 1, 20_000).iter().all(|(id, _)| id != "a"));
        assert_eq!(l.oldest_received_ms(), Some(0));
        assert_eq!(l.received_ms("b"), Some(30_000));
    }

    #[test]
    fn releasing_forgets_the_objects() {
        let mut l = Ledger::new();
        l.hold("a", "ra", 0, 1, 3);
        l.hold("b", "rb", 0, 1, 1);
        assert_eq!(l.release("a"), Some("ra".to_string()));
        assert_eq!(l.held_objects(), 1);
        assert_eq!(l.delivered("a"), None);
        assert_eq!(l.release_all(), vec!["rb".to_string()]);
        assert_eq!((l.held_messages(), l.held_objects()), (0, 0));
    }
}
