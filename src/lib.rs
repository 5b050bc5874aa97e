//! amcctl: administration of Amazon Marketing Cloud (AMC) instances.

pub mod amc;
pub mod error;
pub mod fsutil;
pub mod model;
pub mod secrets;
pub mod store;
