//! The studio server's parts: a gallery of generated images that survives restarts and
//! crashes (`gallery`), and a bounded job queue whose one worker thread runs jobs in order
//! while clients follow their live events (`queue`).

mod decimal;
pub mod gallery;
pub mod queue;
