//! Lead tickets: the duty logbook (rule 第十条(四)) — model and state machine
//! (`model`), the Redis store with atomic transitions and timelines
//! (`store`), and the path from a call to its ticket that survives Redis
//! outages (`journal`, `writer`); beside them, the registrar's records of
//! the officers' softphones (`softphones`), since this module owns every
//! Redis key. Knows nothing of SIP or HTTP.

pub mod journal;
pub mod model;
pub mod report;
pub mod softphones;
pub mod store;
pub mod writer;

pub use model::{State, Ticket};
pub use store::{Store, StoreError};
pub use writer::Tickets;
